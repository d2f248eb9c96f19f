/** Keys that reach an object's prototype when parsed JSON is merged or assigned into another object. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * The path ("a.0.__proto__") of the first `__proto__`, `constructor` or `prototype` key in any
 * object of parsed JSON, at any depth; undefined when there is none. JSON.parse keeps
 * "__proto__" as an own property, harmless until some code spreads or merges the value: the edges
 * (JSON bodies, JSON form fields) refuse such input. Walks without recursion, so a deeply nested
 * value cannot overflow the stack.
 */
export function prototypeKeyIn(value: unknown): string | undefined {
  const stack: { value: unknown; path: string }[] = [{ value, path: '' }];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const { value: node, path } = item;
    if (typeof node !== 'object' || node === null) continue;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++)
        if (typeof node[i] === 'object' && node[i] !== null)
          stack.push({ value: node[i], path: join(path, String(i)) });
      continue;
    }
    for (const key of Object.keys(node)) {
      if (PROTOTYPE_KEYS.has(key)) return join(path, key);
      const child = (node as Record<string, unknown>)[key];
      if (typeof child === 'object' && child !== null) stack.push({ value: child, path: join(path, key) });
    }
  }
  return undefined;
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}
