import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { createProgram } from '../../cli/main';

/** Every command in the tree with its full name, e.g. "dbchange pdm execute". */
function allCommands(command: Command, prefix = ''): { name: string; command: Command }[] {
  const name = `${prefix}${command.name()}`;
  return [{ name, command }, ...command.commands.flatMap((child) => allCommands(child, `${name} `))];
}

/** What `<command> --help` prints, the text added after the options included. */
function helpOf(command: Command): string {
  let text = '';
  command.configureOutput({ writeOut: (chunk) => (text += chunk), writeErr: (chunk) => (text += chunk) });
  command.outputHelp();
  return text;
}

describe('dbchange --help', () => {
  const commands = allCommands(createProgram().program);

  it('covers every command group and command', () => {
    expect(commands.map((entry) => entry.name)).toEqual(
      expect.arrayContaining(['dbchange setup', 'dbchange pdm execute', 'dbchange pdm status', 'dbchange approve', 'dbchange incident open', 'dbchange migrations pending']),
    );
  });

  it.each(commands.filter((entry) => entry.name !== 'dbchange').map((entry) => [entry.name, entry.command] as const))('%s --help shows an example that runs that command', (name, command) => {
    const help = helpOf(command);
    expect(help).toMatch(/\nExamples?:\n/);
    const examples = help.slice(help.search(/\nExamples?:\n/)).split('\n').filter((line) => /^\s+(\S+=\S*\s+)*dbchange /.test(line));
    expect(examples.some((line) => line.includes(name)), `an example line for ${name} in:\n${help}`).toBe(true);
  });

  it('the top-level help lists the exit codes', () => {
    expect(helpOf(commands[0].command)).toContain('Exit codes: 0 ok, 1 failure, 2 waiting for a person, 3 refused.');
  });
});
