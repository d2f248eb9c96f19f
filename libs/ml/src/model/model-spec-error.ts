import { FieldError } from '@tq/contracts';
/** A model that cannot be built or does not fit its data: `field` is the request path ("model.layers.2.targetShape"). */
export class ModelSpecError extends FieldError {}
