import { describeRecovery } from './fixtures/recovery-suite';

describeRecovery('a run survives SIGKILLed worker processes');
