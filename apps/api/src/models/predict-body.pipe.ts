import type { PipeTransform } from '@nestjs/common';
import { predictRequestSchema, type PredictInput } from '@tq/contracts';
import { PredictBodyBytes } from '../common/json-body';
import { ZodPipe } from '../common/zod-body.pipe';

/** A predict's body: its bytes as they came (binary rows or JSON), or `{}` checked when it had neither type. */
export type PredictPayload = PredictInput | PredictBodyBytes;

/**
 * A predict's body: binary rows or JSON as their bytes (PredictBodyBytes: a serve replica checks
 * them, or the API where it runs the predict); a body of any other type is checked here as `{}`
 * against predictRequestSchema, a 400 naming what is missing.
 */
export class PredictBodyPipe implements PipeTransform<unknown, PredictPayload> {
  private readonly json = new ZodPipe(predictRequestSchema);

  transform(value: unknown): PredictPayload {
    return value instanceof PredictBodyBytes ? value : this.json.transform(value);
  }
}

/** The predict's input, its bytes checked now (400 naming the field). */
export function predictInputOf(payload: PredictPayload): PredictInput {
  return payload instanceof PredictBodyBytes ? payload.input() : payload;
}
