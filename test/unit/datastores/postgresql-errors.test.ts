import { describe, expect, it } from 'vitest';
import { serverErrors } from '../../../datastores/postgresql/index.ts';

describe("PostgreSQL's own reasons for a failed start", () => {
  it('the messages that lead to the FATAL, the last three', () => {
    expect(
      serverErrors([
        '2026-12-04 15:50:00.100 UTC [1] LOG:  starting PostgreSQL 15.14',
        '2026-12-04 15:50:00.120 UTC [1] LOG:  unrecognized configuration parameter "x" in file "/d/postgresql.conf" line 3',
        '2026-12-04 15:50:00.121 UTC [1] FATAL:  configuration file "/d/postgresql.conf" contains errors',
        'an unprefixed line',
      ]),
    ).toBe('LOG: starting PostgreSQL 15.14; LOG: unrecognized configuration parameter "x" in file "/d/postgresql.conf" line 3; FATAL: configuration file "/d/postgresql.conf" contains errors');
  });

  it('without a FATAL its ERRORs; nothing, null', () => {
    expect(serverErrors(['x LOG:  fine', 'x ERROR:  relation "t" does not exist', 'x LOG:  fine again'])).toBe('ERROR: relation "t" does not exist');
    expect(serverErrors(['x LOG:  fine'])).toBeNull();
    expect(serverErrors([])).toBeNull();
  });
});
