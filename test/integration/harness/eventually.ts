/** Until `f` holds (a throw counts as not yet) or `ms` pass: for what arrives asynchronously, such as replication. */
export async function eventually(f: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f().catch(() => false))) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
