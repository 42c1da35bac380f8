// The dashboard's look: the system's own fonts, colours that read as state (green done, blue running, grey
// pending, orange blocked, red given up), and commands set so that one click selects the whole line.
export const DASHBOARD_CSS = `
:root { color-scheme: light; --done: #2e7d32; --running: #1565c0; --pending: #cfd8dc; --blocked: #ef6c00; --failed: #b71c1c; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2327; background: #f6f7f9; }
header { padding: 16px 24px; background: #1d2327; color: #fff; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header .meta { margin: 0; color: #b0bec5; font-size: 12px; }
header .summary { margin: 8px 0 0; font-size: 15px; }
main { padding: 8px 24px 32px; }
section { margin-top: 20px; background: #fff; border: 1px solid #dde1e5; border-radius: 6px; padding: 12px 16px; }
h2 { margin: 0 0 10px; font-size: 17px; }
h3 { margin: 12px 0 6px; font-size: 14px; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid #eceff1; }
th { font-size: 12px; color: #546e7a; font-weight: 600; }
td.number, th.number { text-align: right; }
tr.has-pending td.number { font-weight: 700; color: var(--blocked); }
ul { margin: 0; padding-left: 18px; }
ul.files { list-style: none; padding: 0; font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px; }
a { color: var(--running); }
.quiet { color: #78909c; }
.ok { color: var(--done); }
.warn { color: var(--blocked); }
.error { color: var(--failed); }
.decision { border-left: 4px solid var(--blocked); padding: 4px 12px; margin: 10px 0; background: #fff8f0; }
.decision.approve { border-color: var(--running); background: #f0f6ff; }
.decision h3 { margin-top: 4px; }
.decision p { margin: 4px 0; }
pre.command { margin: 6px 0; padding: 6px 10px; background: #263238; color: #eceff1; border-radius: 4px; white-space: pre-wrap; word-break: break-all; }
pre.command code { font: 12px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; user-select: all; }
.stage { display: inline-block; padding: 1px 8px; border-radius: 10px; background: #eceff1; font-size: 12px; }
.stage-blocked, .stage-failed { background: #ffe0cc; color: #8a3b00; }
.stage-waiting-approval { background: #dbe9ff; color: #0d3c7a; }
.stage-applying, .stage-in-progress { background: #d8f0da; color: #1b5e20; }
.wave h3 { font-weight: 500; }
.grid { display: flex; flex-wrap: wrap; gap: 2px; }
.cell { display: inline-block; width: 12px; height: 12px; border-radius: 2px; background: var(--pending); vertical-align: middle; }
.cell.done { background: var(--done); }
.cell.running { background: var(--running); }
.cell.blocked { background: var(--blocked); outline: 2px solid #000; outline-offset: -1px; }
.cell.failed { background: var(--failed); }
.legend { margin: 0 0 6px; font-size: 12px; color: #546e7a; }
table.issues td.error { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
`;
