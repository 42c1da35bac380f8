// `dbchange init`: the dbchange.yaml a new project starts from, with comments that say what each part is for.
import { stringify } from 'yaml';

/** The migration folders a new project gets, relative to dbchange.yaml (dbmate's and Rails' layout). */
export const NEW_PROJECT_FOLDERS = { regular: 'db/migrate', postDeploy: 'db/post_migrate' } as const;

/** dbchange.yaml for one environment whose database is $DATABASE_URL, with `approver` allowed to approve. */
export function newProjectConfigText(approver: string): string {
  // A login name such as "dev:ops" would be YAML syntax as a bare key; stringify quotes it only when it must.
  const approverKey = stringify(approver).trim();
  return `# dbchange project settings. README "Configuration" lists every key.
# \${VAR} is read from the environment of the process that runs dbchange; paths are relative to this file.

migrations:
  regular: ${NEW_PROJECT_FOLDERS.regular}           # run by your deploy, before the new code starts (dbchange lints them)
  postDeploy: ${NEW_PROJECT_FOLDERS.postDeploy}   # run after the deploy by \`dbchange pdm execute\`

# The post-deploy pipeline walks the environments in this order; add staging before production here.
environments:
  - name: development
    databaseUrl: \${DATABASE_URL}   # e.g. postgres://postgres@127.0.0.1:5432/app; only the worker needs it
    # approval: { roles: [release-manager] }          # someone in this role approves before this environment
    # qa: { command: "npm run qa", timeout: 30m }     # run after this environment's migrations

# Who may approve, in which roles. Nobody approves their own change.
approvers:
  ${approverKey}: [release-manager]
`;
}
