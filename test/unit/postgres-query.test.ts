/**
 * The Mongo-style query → SQL translation of the PostgreSQL store (postgres-query.ts): the
 * SQL and bind parameters of each operator, and the refusals. No database needed; what the
 * SQL means is checked against PostgreSQL in test/contract/postgres-queries.test.ts.
 */
import assert from 'node:assert/strict';
import { parseQuery } from '../../server/storage/mingo-query.js';
import { pollDocSql, selectSql, SqlParams, translateFilter, translateSort } from '../../server/storage/postgres-query.js';
import { PostgresQueries } from '../../server/storage/postgres-query-run.js';
import type { PostgresStore } from '../../server/storage/postgres-connection.js';

/** The filter's SQL and its parameters after the collection ($1). */
function translate(filter: Record<string, unknown>): { sql: string; values: unknown[] } {
  const params = new SqlParams(['collection']);
  const sql = translateFilter(filter, params);
  return { sql, values: params.values.slice(1) };
}

const DATA_OBJECT = "(CASE WHEN jsonb_typeof(data) = 'object' THEN data END)";
const RANK = (x: string, dir: string) =>
  [
    `CASE jsonb_typeof(${x}) WHEN 'number' THEN 1 WHEN 'string' THEN 2 WHEN 'object' THEN 3 WHEN 'array' THEN 4 WHEN 'boolean' THEN 5 ELSE 0 END ${dir}`,
    `CASE WHEN jsonb_typeof(${x}) = 'number' THEN (${x})::numeric END ${dir}`,
    `(CASE WHEN jsonb_typeof(${x}) = 'string' THEN ${x} #>> '{}' END) COLLATE "C" ${dir}`,
    `CASE WHEN jsonb_typeof(${x}) IN ('object', 'array', 'boolean') THEN ${x} END ${dir}`,
  ].join(', ');

describe('PostgreSQL query translation', function () {
  describe('equality', function () {
    it('a scalar becomes containment of the value or of an array holding it (GIN-indexable)', function () {
      assert.deepEqual(translate({ title: 'x' }), {
        sql: '(data @> $2::jsonb OR data @> $3::jsonb)',
        values: ['{"title":"x"}', '{"title":["x"]}'],
      });
      assert.deepEqual(translate({ 'a.b': 5 }), {
        sql: '(data @> $2::jsonb OR data @> $3::jsonb)',
        values: ['{"a":{"b":5}}', '{"a":{"b":[5]}}'],
      });
      assert.deepEqual(translate({ flag: { $eq: true } }).values, ['{"flag":true}', '{"flag":[true]}']);
    });

    it('null also matches a missing field', function () {
      assert.deepEqual(translate({ x: null }), {
        sql: '((data #> $2::text[]) IS NULL OR data @> $3::jsonb OR data @> $4::jsonb)',
        values: [['x'], '{"x":null}', '{"x":[null]}'],
      });
    });

    it('a path with an array index reads the value at the path', function () {
      const x = `(${DATA_OBJECT} #> $2::text[])`;
      assert.deepEqual(translate({ 'items.0': 'a' }), {
        sql: `(${x} = $3::jsonb OR (jsonb_typeof(${x}) = 'array' AND ${x} @> jsonb_build_array($3::jsonb)))`,
        values: [['items', '0'], '"a"'],
      });
    });

    it('an object or array compares whole, or with an item of an array field', function () {
      const x = '(data #> $2::text[])';
      assert.deepEqual(translate({ x: { a: 1 } }), {
        sql: `(${x} = $3::jsonb OR EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(${x}) = 'array' THEN ${x} END) AS e(item) WHERE e.item = $3::jsonb))`,
        values: [['x'], '{"a":1}'],
      });
      assert.deepEqual(translate({ x: [1, 2] }).values, [['x'], '[1,2]']);
    });

    it('_id compares the id column; a non-string id matches nothing', function () {
      assert.deepEqual(translate({ _id: 'a' }), { sql: 'id = $2', values: ['a'] });
      assert.deepEqual(translate({ _id: 5 }), { sql: 'FALSE', values: [] });
    });

    it("_v, _type, _m and _data read the columns of sharedb-mongo's shape", function () {
      assert.equal(
        translate({ _v: 3 }).sql,
        "(to_jsonb(v) = $2::jsonb OR (jsonb_typeof(to_jsonb(v)) = 'array' AND to_jsonb(v) @> jsonb_build_array($2::jsonb)))",
      );
      assert.match(translate({ _type: 'json1' }).sql, /^\(to_jsonb\(type\) = \$2::jsonb/);
      assert.deepEqual(translate({ '_m.user': 'u' }), {
        sql: '(metadata @> $2::jsonb OR metadata @> $3::jsonb)',
        values: ['{"user":"u"}', '{"user":["u"]}'],
      });
      assert.match(translate({ _data: 3 }).sql, /CASE WHEN jsonb_typeof\(data\) = 'object' THEN data -> '_data' ELSE data END/);
    });

    it('keys are parameters, never SQL: quotes and "__proto__" travel as JSON', function () {
      const { sql, values } = translate({ "a'; DROP TABLE x; --": 1, __proto__x: 2 });
      assert.doesNotMatch(sql, /DROP/);
      assert.deepEqual(values.slice(0, 1), ['{"a\'; DROP TABLE x; --":1}']);
      const proto = new SqlParams();
      translateFilter(JSON.parse('{"__proto__.polluted": 1}') as Record<string, unknown>, proto);
      assert.deepEqual(proto.values[0], '{"__proto__":{"polluted":1}}');
    });
  });

  describe('operators', function () {
    it('$in: containment of any, null for missing, whole values for objects and arrays', function () {
      const { sql, values } = translate({ x: { $in: ['a', 1, null, [1]] } });
      assert.equal(sql.split(' OR ')[0], '((data #> $2::text[]) IS NULL');
      assert.match(sql, /data @> ANY\(\$3::jsonb\[\]\)/);
      assert.deepEqual(values[1], ['{"x":"a"}', '{"x":["a"]}', '{"x":1}', '{"x":[1]}', '{"x":null}', '{"x":[null]}']);
      assert.equal(values[2], '[1]');
      assert.deepEqual(translate({ x: { $in: [] } }), { sql: 'FALSE', values: [] });
    });

    it('$in on _id and on an indexed path', function () {
      assert.deepEqual(translate({ _id: { $in: ['a', 2, 'b'] } }), { sql: 'id = ANY($2::text[])', values: [['a', 'b']] });
      const x = `(${DATA_OBJECT} #> $2::text[])`;
      assert.deepEqual(translate({ 'a.0': { $in: [1, 2] } }), {
        sql: `(${x} = ANY($3::jsonb[]) OR (jsonb_typeof(${x}) = 'array' AND ${x} @> ANY($4::jsonb[])))`,
        values: [
          ['a', '0'],
          ['1', '2'],
          ['[1]', '[2]'],
        ],
      });
    });

    it('$gt/$gte/$lt/$lte: a fixed jsonpath per operator, the value in its variables', function () {
      for (const [op, sign] of [
        ['$gt', '>'],
        ['$gte', '>='],
        ['$lt', '<'],
        ['$lte', '<='],
      ] as const) {
        assert.deepEqual(translate({ n: { [op]: 5 } }), {
          sql: `jsonb_path_exists((data #> $2::text[]), 'lax $ ? (@ ${sign} $v)', $3::jsonb, TRUE)`,
          values: [['n'], '{"v":5}'],
        });
      }
      assert.deepEqual(translate({ s: { $lt: "it's" } }).values, [['s'], '{"v":"it\'s"}']);
      assert.deepEqual(
        translate({ '_m.mtime': { $gt: 1 } }).sql,
        "jsonb_path_exists((metadata #> $2::text[]), 'lax $ ? (@ > $v)', $3::jsonb, TRUE)",
      );
    });

    it('comparisons with null: $gte/$lte match an explicit null (as mingo), $gt/$lt nothing', function () {
      assert.deepEqual(translate({ x: { $gte: null } }), {
        sql: '(data @> $2::jsonb OR data @> $3::jsonb)',
        values: ['{"x":null}', '{"x":[null]}'],
      });
      assert.deepEqual(translate({ x: { $lt: null } }), { sql: 'FALSE', values: [] });
    });

    it('$exists', function () {
      assert.deepEqual(translate({ x: { $exists: true } }), { sql: '(data #> $2::text[]) IS NOT NULL', values: [['x']] });
      assert.deepEqual(translate({ x: { $exists: false } }), { sql: '(data #> $2::text[]) IS NULL', values: [['x']] });
    });

    it('$ne, $nin, $not, $nor negate without letting NULL through', function () {
      assert.equal(translate({ x: { $ne: 1 } }).sql, 'NOT COALESCE((data @> $2::jsonb OR data @> $3::jsonb), FALSE)');
      assert.equal(translate({ x: { $nin: [1] } }).sql, 'NOT COALESCE(data @> ANY($2::jsonb[]), FALSE)');
      assert.equal(
        translate({ x: { $not: { $gt: 1 } } }).sql,
        "NOT COALESCE(jsonb_path_exists((data #> $2::text[]), 'lax $ ? (@ > $v)', $3::jsonb, TRUE), FALSE)",
      );
      assert.equal(translate({ $nor: [{ a: 1 }] }).sql, 'NOT COALESCE((data @> $2::jsonb OR data @> $3::jsonb), FALSE)');
    });

    it('$and, $or, several fields and several operators on one field', function () {
      assert.equal(
        translate({ $or: [{ a: 1 }, { b: 2 }] }).sql,
        '((data @> $2::jsonb OR data @> $3::jsonb) OR (data @> $4::jsonb OR data @> $5::jsonb))',
      );
      assert.equal(
        translate({ $and: [{ a: 1 }, { b: 2 }] }).sql,
        '((data @> $2::jsonb OR data @> $3::jsonb) AND (data @> $4::jsonb OR data @> $5::jsonb))',
      );
      assert.equal(
        translate({ a: 1, b: 2 }).sql,
        '((data @> $2::jsonb OR data @> $3::jsonb) AND (data @> $4::jsonb OR data @> $5::jsonb))',
      );
      // One path, one parameter however often it is read.
      assert.deepEqual(translate({ n: { $gt: 1, $lt: 9 } }).values, [['n'], '{"v":1}', '{"v":9}']);
      assert.deepEqual(translate({}), { sql: 'TRUE', values: [] });
    });
  });

  describe('sorting and paging', function () {
    it("$sort: MongoDB's type order, then the value; ties by id", function () {
      const params = new SqlParams(['c']);
      assert.equal(
        translateSort({ a: 1, b: -1 }, params),
        `${RANK('(data #> $2::text[])', 'ASC')}, ${RANK('(data #> $3::text[])', 'DESC')}, id`,
      );
      assert.deepEqual(params.values, ['c', ['a'], ['b']]);
      assert.equal(translateSort({ _id: -1, a: 1 }, new SqlParams()), 'id DESC');
      assert.equal(translateSort(undefined, new SqlParams()), 'id');
    });

    it('a whole query: filter, MAX_QUERY_SCAN gate, sort, $skip and $limit under the result cap', function () {
      const sql = selectSql('t', 'c', parseQuery({ x: 1, $sort: { x: -1 }, $skip: 2, $limit: 5000 }), {
        output: 'snapshots',
        withMeta: true,
        maxRows: 1001,
        maxScan: 10000,
      });
      assert.equal(
        sql.text,
        'SELECT id, v, type, data, metadata FROM t WHERE collection = $1 AND type IS NOT NULL AND (data @> $2::jsonb OR data @> $3::jsonb)' +
          ' AND (SELECT count(*) FROM (SELECT 1 FROM t WHERE collection = $1 AND type IS NOT NULL LIMIT $4) AS live) <= $5' +
          ` ORDER BY ${RANK('(data #> $6::text[])', 'DESC')}, id OFFSET $7 LIMIT $8`,
      );
      assert.deepEqual(sql.values, ['c', '{"x":1}', '{"x":[1]}', 10001, 10000, ['x'], 2, 1001]);
    });

    it('ids only, no metadata, $limit below the cap, $limit: 0 meaning none', function () {
      assert.deepEqual(selectSql('t', 'c', parseQuery({ $limit: 3 }), { output: 'ids', maxRows: 1001 }), {
        text: 'SELECT id FROM t WHERE collection = $1 AND type IS NOT NULL ORDER BY id LIMIT $2',
        values: ['c', 3],
      });
      assert.equal(
        selectSql('t', 'c', parseQuery({ $limit: 0 }), { output: 'snapshots' }).text,
        'SELECT id, v, type, data FROM t WHERE collection = $1 AND type IS NOT NULL ORDER BY id',
      );
    });

    it('$count counts the page', function () {
      assert.deepEqual(selectSql('t', 'c', parseQuery({ $count: true, x: 1, $skip: 1, $limit: 2 }), { output: 'ids' }), {
        text: 'SELECT count(*)::integer AS n FROM (SELECT 1 FROM t WHERE collection = $1 AND type IS NOT NULL AND (data @> $2::jsonb OR data @> $3::jsonb) OFFSET $4 LIMIT $5) AS matched',
        values: ['c', '{"x":1}', '{"x":[1]}', 1, 2],
      });
    });

    it('queryPollDoc asks about one live document', function () {
      assert.deepEqual(pollDocSql('t', 'c', 'd', parseQuery({ x: 1 })), {
        text: 'SELECT EXISTS (SELECT 1 FROM t WHERE collection = $1 AND id = $2 AND type IS NOT NULL AND (data @> $3::jsonb OR data @> $4::jsonb)) AS matches',
        values: ['c', 'd', '{"x":1}', '{"x":[1]}'],
      });
    });
  });

  describe('refusals (TANDEM_INVALID_QUERY), before anything is read', function () {
    const untranslatable: Array<[string, Record<string, unknown>]> = [
      ['$regex', { name: { $regex: '^a' } }],
      ['$elemMatch', { items: { $elemMatch: { a: 1 } } }],
      ['$all', { tags: { $all: ['a'] } }],
      ['$size', { tags: { $size: 2 } }],
      ['$type', { x: { $type: 'string' } }],
      ['$mod', { x: { $mod: [2, 0] } }],
      ['$bitsAllSet', { x: { $bitsAllSet: 1 } }],
      ['$expr', { $expr: { $gt: ['$a', '$b'] } }],
    ];
    for (const [op, filter] of untranslatable) {
      it(`${op} is refused by the translation`, function () {
        assert.throws(() => translate(filter), { code: 'TANDEM_INVALID_QUERY', message: `${op} is not supported by the PostgreSQL store` });
      });
    }

    it('comparisons with objects or arrays, empty path parts and $distinct', function () {
      assert.throws(() => translate({ x: { $gt: [1] } }), {
        code: 'TANDEM_INVALID_QUERY',
        message: /compares with a number, string or boolean/,
      });
      assert.throws(() => translate({ x: { $lt: { a: 1 } } }), { code: 'TANDEM_INVALID_QUERY' });
      assert.throws(() => translate({ 'a..b': 1 }), { code: 'TANDEM_INVALID_QUERY', message: /empty part/ });
      assert.throws(() => selectSql('t', 'c', parseQuery({ $distinct: { field: 'x' } }), { output: 'ids' }), {
        code: 'TANDEM_INVALID_QUERY',
        message: '$distinct is not supported by the PostgreSQL store',
      });
    });

    it("the other stores' refusals come first and reach the callback without touching the store", async function () {
      // A store whose every statement fails: a refused query must never send one.
      const store = new Proxy(
        {},
        {
          get: (_target, property) => (property === 'tables' ? { snapshots: 't' } : () => Promise.reject(new Error('the store was used'))),
        },
      ) as PostgresStore;
      const queries = new PostgresQueries(store);
      await assert.rejects(queries.query('c', { $where: 'sleep(1000)' }, null), {
        code: 'TANDEM_INVALID_QUERY',
        message: /\$where runs code/,
      });
      await assert.rejects(queries.queryPoll('c', { x: { $regex: '^a' } }, null), { code: 'TANDEM_INVALID_QUERY' });
      await assert.rejects(queries.pollDoc('c', 'd', { x: { $unknown: 1 } }), { code: 'TANDEM_INVALID_QUERY' });
    });
  });
});
