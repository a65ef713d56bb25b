/**
 * Databases and users: create/list/delete databases, create/list/get/delete
 * users, attributes, passwords and access (trove/guestagent/datastore/manager.py).
 */
import { OperationNotSupportedError } from '../errors.ts';
import type { Admin, OpContext } from '../datastore.ts';
import type { CallContext, MethodSpec } from '../rpc/dispatcher.ts';
import type { HandlerDeps } from './deps.ts';
import { withEndNotification } from './notify.ts';
import {
  list, optStr, parsePage, parseSchema, parseUser, parseUserAttributes, serializePage, serializeSchema, serializeUser, str,
} from './wire.ts';

const page = [{ name: 'limit' }, { name: 'marker' }, { name: 'include_marker' }] as const;

export function adminMethods(d: HandlerDeps): Record<string, MethodSpec> {
  const admin = (method: string): Admin => {
    if (!d.datastore.admin) throw new OperationNotSupportedError(method, d.datastore.name);
    return d.datastore.admin;
  };
  const op = (ctx: CallContext): OpContext => ({ log: ctx.log, signal: ctx.signal });
  const notified = <T>(ctx: CallContext, fn: () => Promise<T>): Promise<T> => withEndNotification(ctx, d.reporter, {}, fn);

  return {
    create_database: {
      params: [{ name: 'databases', required: true }],
      handler: async (a, ctx) => {
        const dbs = list(a, 'databases').map(parseSchema);
        await notified(ctx, () => admin(ctx.method).createDatabases(dbs, op(ctx)));
      },
    },
    list_databases: {
      params: page,
      handler: async (a, ctx) => serializePage(await admin(ctx.method).listDatabases(parsePage(a), op(ctx)), serializeSchema),
    },
    delete_database: {
      params: [{ name: 'database', required: true }],
      handler: async (a, ctx) => {
        const db = parseSchema(a['database']);
        await notified(ctx, () => admin(ctx.method).deleteDatabase(db, op(ctx)));
      },
    },
    create_user: {
      params: [{ name: 'users', required: true }],
      handler: async (a, ctx) => {
        const users = list(a, 'users').map(parseUser);
        await notified(ctx, () => admin(ctx.method).createUsers(users, op(ctx)));
      },
    },
    list_users: {
      params: page,
      handler: async (a, ctx) => serializePage(await admin(ctx.method).listUsers(parsePage(a), op(ctx)), serializeUser),
    },
    get_user: {
      params: [{ name: 'username', required: true }, { name: 'hostname', required: true }],
      handler: async (a, ctx) => {
        const u = await admin(ctx.method).getUser(str(a, 'username'), optStr(a, 'hostname'), op(ctx));
        return u ? serializeUser(u) : null;
      },
    },
    delete_user: {
      params: [{ name: 'user', required: true }],
      handler: async (a, ctx) => {
        const user = parseUser(a['user']);
        await notified(ctx, () => admin(ctx.method).deleteUser(user, op(ctx)));
      },
    },
    update_attributes: {
      params: [{ name: 'username', required: true }, { name: 'hostname', required: true }, { name: 'user_attrs', required: true }],
      handler: async (a, ctx) => {
        const attrs = parseUserAttributes(a['user_attrs']);
        const name = str(a, 'username');
        const host = optStr(a, 'hostname');
        await notified(ctx, () => admin(ctx.method).updateAttributes(name, host, attrs, op(ctx)));
      },
    },
    change_passwords: {
      params: [{ name: 'users', required: true }],
      handler: async (a, ctx) => {
        const users = list(a, 'users').map(parseUser);
        await notified(ctx, () => admin(ctx.method).changePasswords(users, op(ctx)));
      },
    },
    grant_access: {
      params: [{ name: 'username', required: true }, { name: 'hostname', required: true }, { name: 'databases', required: true }],
      handler: async (a, ctx) => {
        const dbs = list(a, 'databases').map((x) => parseSchema(x).name);
        await admin(ctx.method).grantAccess(str(a, 'username'), optStr(a, 'hostname'), dbs, op(ctx));
      },
    },
    revoke_access: {
      params: [{ name: 'username', required: true }, { name: 'hostname', required: true }, { name: 'database', required: true }],
      handler: async (a, ctx) => {
        await admin(ctx.method).revokeAccess(str(a, 'username'), optStr(a, 'hostname'), parseSchema(a['database']).name, op(ctx));
      },
    },
    list_access: {
      params: [{ name: 'username', required: true }, { name: 'hostname', required: true }],
      handler: async (a, ctx) => (await admin(ctx.method).listAccess(str(a, 'username'), optStr(a, 'hostname'), op(ctx))).map(serializeSchema),
    },
  };
}
