import type { PipeTransform } from '@nestjs/common';
import { predictRequestSchema, tensorRowsOf, type PredictInput } from '@tq/contracts';
import { ZodPipe } from '../common/zod-body.pipe';

/**
 * A predict's body: binary rows (jsonBodies read an `application/octet-stream` body as a Buffer)
 * decoded by tensorRowsOf, or JSON checked against predictRequestSchema. Both refuse naming the field.
 */
export class PredictBodyPipe implements PipeTransform<unknown, PredictInput> {
  private readonly json = new ZodPipe(predictRequestSchema);

  transform(value: unknown): PredictInput {
    return Buffer.isBuffer(value) ? tensorRowsOf(value) : this.json.transform(value);
  }
}
