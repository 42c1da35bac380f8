// The workflows the worker registers.
export { postDeployMigrationPipeline } from './pipeline';
export { incident } from './incident';
export { changeRequest } from './change-request';
export { backfill } from './backfill';
