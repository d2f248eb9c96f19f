import { Body, Controller, Get, Param, Post, UploadedFile, UseInterceptors } from '@nestjs/common';
import { FileInterceptor } from '@nestjs/platform-express';
import { ApiBody, ApiConsumes, ApiTags } from '@nestjs/swagger';
import {
  FieldError,
  datasetInfoSchema,
  datasetListSchema,
  datasetUploadFieldsSchema,
  type DatasetInfo,
  type DatasetUploadFields,
} from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { parseDatasetUpload } from '@tq/ml';
import { DatasetNotFoundError, DatasetStore } from '@tq/storage';
import { notFoundAs } from '../common/not-found-as';
import { ErrorResponses, JsonResponse } from '../common/openapi';
import { ZodPipe } from '../common/zod-body.pipe';

/** A Map: a plain object would answer for "constructor" or "__proto__". */
const FORMAT_OF_EXTENSION = new Map<string, 'csv' | 'jsonl'>([
  ['csv', 'csv'],
  ['jsonl', 'jsonl'],
  ['ndjson', 'jsonl'],
  ['json', 'jsonl'],
]);

@ApiTags('datasets')
@Controller('v1/datasets')
export class DatasetsController {
  constructor(private readonly datasets: DatasetStore) {}

  /** Multipart: `file` (CSV with a header row, or JSONL), `labelColumn`, optional `featureColumns` (comma-separated), `name`. */
  @Post()
  @ApiConsumes('multipart/form-data')
  @ApiBody({
    schema: {
      type: 'object',
      required: ['file', 'labelColumn'],
      properties: {
        file: { type: 'string', format: 'binary' },
        labelColumn: { type: 'string' },
        featureColumns: { type: 'string' },
        name: { type: 'string' },
      },
    },
  })
  @JsonResponse(201, datasetInfoSchema, 'parsed and stored')
  @ErrorResponses(400, 413)
  @UseInterceptors(FileInterceptor('file', { limits: { fileSize: loadConfig().MAX_UPLOAD_BYTES, files: 1 } }))
  async upload(
    @UploadedFile() file: Express.Multer.File | undefined,
    @Body(new ZodPipe(datasetUploadFieldsSchema)) fields: DatasetUploadFields,
  ): Promise<DatasetInfo> {
    if (!file) throw new FieldError('file', 'a multipart file field named "file" is required');
    const extension = file.originalname.split('.').pop()?.toLowerCase() ?? '';
    const format = FORMAT_OF_EXTENSION.get(extension);
    if (!format) throw new FieldError('file', `"${file.originalname}" is neither .csv nor .jsonl`);
    const data = parseDatasetUpload(file.buffer, format, fields);
    return this.datasets.save(data, {
      name: fields.name ?? file.originalname,
      format,
      labelColumn: fields.labelColumn ?? null,
      featureColumns: data.featureColumns ?? [],
      bytes: file.size,
    });
  }

  @Get()
  @JsonResponse(200, datasetListSchema, 'every stored dataset, oldest first')
  list(): Promise<DatasetInfo[]> {
    return this.datasets.list();
  }

  @Get(':id')
  @JsonResponse(200, datasetInfoSchema, 'the dataset')
  @ErrorResponses(404)
  async get(@Param('id') id: string): Promise<DatasetInfo> {
    return this.datasets.get(id).catch(notFoundAs(DatasetNotFoundError, 'id'));
  }
}
