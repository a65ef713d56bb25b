// Trove's own rendering of a datastore's config.template, as its taskmanager does it for a new
// instance (trove.common.template.SingleInstanceConfigTemplate with the flavour's RAM): what a
// guest receives as prepare's config_contents.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';

const SCRIPT = [
  'import sys',
  'from types import SimpleNamespace',
  'from trove.common import template',
  'dv = SimpleNamespace(datastore_name=sys.argv[1], manager=sys.argv[1], name=sys.argv[3])',
  "sys.stdout.write(template.SingleInstanceConfigTemplate(dv, {'ram': int(sys.argv[2])}, sys.argv[4]).render())",
].join('\n');

export function troveConfigTemplate(manager: string, ramMb: number, version: string): string {
  return execFileSync('/usr/bin/python3', ['-c', SCRIPT, manager, String(ramMb), version, randomUUID()], { encoding: 'utf8' });
}
