// What the Temporal UI shows of a running change: current details, and the status and environment search
// attributes (upserted only when they change, since each upsert is an event in history).
import { setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import { ENVIRONMENT, STATUS } from '../core/search-attributes';

export class Visibility {
  private publishedStatus = '';
  private publishedEnvironment = '';

  /** `lines`: a bold headline first, then facts; empty lines are left out. */
  publish(lines: (string | undefined | false)[], status: string, environment: string | undefined): void {
    setCurrentDetails(lines.filter(Boolean).join('\n\n'));
    if (status !== this.publishedStatus) {
      upsertSearchAttributes([{ key: STATUS, value: status }]);
      this.publishedStatus = status;
    }
    if (environment && environment !== this.publishedEnvironment) {
      upsertSearchAttributes([{ key: ENVIRONMENT, value: environment }]);
      this.publishedEnvironment = environment;
    }
  }
}
