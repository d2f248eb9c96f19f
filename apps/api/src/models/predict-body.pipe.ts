import type { PipeTransform } from '@nestjs/common';
import { predictRequestSchema, tensorRowsOf, type PredictInput } from '@tq/contracts';
import { JsonBodyBytes } from '../common/json-body';
import { ZodPipe } from '../common/zod-body.pipe';

/** A predict's body: decoded binary rows, a checked JSON body, or a JSON body's bytes not yet checked. */
export type PredictPayload = PredictInput | JsonBodyBytes;

/**
 * A predict's body: binary rows (jsonBodies read an `application/octet-stream` body as a Buffer)
 * decoded by tensorRowsOf (400 naming the field); a JSON body as its bytes (JsonBodyBytes: a serve
 * replica checks them, or the API where it runs the predict); a body of any other type is checked
 * here as `{}` against predictRequestSchema, a 400 naming what is missing.
 */
export class PredictBodyPipe implements PipeTransform<unknown, PredictPayload> {
  private readonly json = new ZodPipe(predictRequestSchema);

  transform(value: unknown): PredictPayload {
    if (value instanceof JsonBodyBytes) return value;
    return Buffer.isBuffer(value) ? tensorRowsOf(value) : this.json.transform(value);
  }
}

/** The predict's input, a JSON body checked now (400 naming the field). */
export function predictInputOf(payload: PredictPayload): PredictInput {
  return payload instanceof JsonBodyBytes ? payload.checked(predictRequestSchema) : payload;
}
