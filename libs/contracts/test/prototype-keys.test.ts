import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { prototypeKeyIn } from '@tq/contracts';

describe('prototypeKeyIn', () => {
  it('finds __proto__, constructor and prototype keys at any depth, as JSON.parse keeps them', () => {
    assert.equal(prototypeKeyIn(JSON.parse('{"__proto__": {"x": 1}}')), '__proto__');
    assert.equal(prototypeKeyIn(JSON.parse('{"a": [{"b": {"constructor": {}}}]}')), 'a.0.b.constructor');
    assert.equal(prototypeKeyIn(JSON.parse('{"a": {"prototype": 1}}')), 'a.prototype');
    assert.equal(prototypeKeyIn(JSON.parse('{"\\u005f_proto__": 1}')), '__proto__');
  });
  it('passes values that only mention them, and deep nesting without recursion', () => {
    assert.equal(prototypeKeyIn({ name: '__proto__', list: ['constructor'], n: 1 }), undefined);
    assert.equal(prototypeKeyIn(null), undefined);
    assert.equal(prototypeKeyIn('constructor'), undefined);
    const deep = JSON.parse('['.repeat(100_000) + ']'.repeat(100_000)) as unknown;
    assert.equal(prototypeKeyIn(deep), undefined);
  });
});
