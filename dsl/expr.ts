/**
 * Expressions in the GitHub Actions style: `${{ params.lr }}`, `${{ steps.sft.outputs.checkpoint }}`,
 * `${{ run.id }}`, with ||, &&, ==, !=, <, <=, >, >=, !, parentheses and string / number / boolean /
 * null literals.
 *
 * The compiler substitutes `params.*` and keeps `steps.*` / `run.*` as `${{ }}` text in the Plan;
 * the workflow resolves those at run time with `resolveValue`. PURE code: no Node imports, because
 * the Temporal workflow bundle imports this file.
 */
import type { RunContext } from './plan.ts';

export type Literal = string | number | boolean | null;
export type BinaryOp = '||' | '&&' | '==' | '!=' | '<' | '<=' | '>' | '>=';

export type Expr =
  | { type: 'literal'; value: Literal }
  /** A dotted name: ['params', 'lr'] or ['steps', 'sft', 'outputs', 'checkpoint']. */
  | { type: 'ref'; path: string[] }
  | { type: 'not'; operand: Expr }
  | { type: 'binary'; op: BinaryOp; left: Expr; right: Expr };

/** A syntax error; `offset` counts characters from the start of the text that was parsed. */
export class ExprError extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.name = 'ExprError';
    this.offset = offset;
  }
}

/** Values expressions can see. A step missing from `steps` (skipped, not yet run) reads as null. */
export interface ExprContext {
  params?: Record<string, unknown>;
  steps?: Record<string, { outputs?: Record<string, unknown> } | null | undefined>;
  run?: RunContext;
}

/** Names expressions may start with. */
export const ROOTS = ['params', 'steps', 'run'] as const;
/** Fields of `run.*`. */
export const RUN_FIELDS = ['id', 'dir', 'started_at', 'pipeline'] as const;

// ---------------------------------------------------------------- tokens

type Token =
  | { t: 'lit'; value: Literal; pos: number }
  | { t: 'ident'; name: string; pos: number }
  | { t: 'op'; op: string; pos: number }
  | { t: 'end'; pos: number };

/** Keyword literals (a Map: names such as `constructor` or `toString` are not keywords). */
const KEYWORDS = new Map<string, Literal>([['true', true], ['false', false], ['null', null]]);
const OPS = ['||', '&&', '==', '!=', '<=', '>=', '<', '>', '!', '(', ')', '.', '[', ']'];
const IDENT = /[A-Za-z_][A-Za-z0-9_-]*/y;
const NUMBER = /-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/y;

/** Tokenizes from `start`; stops at the end of text or, when `inTemplate`, at `}}`. */
function tokenize(text: string, start: number, inTemplate: boolean): { tokens: Token[]; end: number } {
  const tokens: Token[] = [];
  let i = start;
  for (;;) {
    while (i < text.length && /\s/.test(text[i])) i++;
    if (inTemplate && text.startsWith('}}', i)) return { tokens: [...tokens, { t: 'end', pos: i }], end: i + 2 };
    if (i >= text.length) {
      if (inTemplate) throw new ExprError("unterminated expression: add '}}' to close '${{'", start - 3);
      return { tokens: [...tokens, { t: 'end', pos: i }], end: i };
    }
    const c = text[i];
    if (c === "'" || c === '"') {
      let j = i + 1;
      let value = '';
      for (;;) {
        if (j >= text.length) throw new ExprError(`unterminated string literal: add the closing ${c}`, i);
        if (text[j] === c) {
          if (text[j + 1] === c) { value += c; j += 2; continue; } // '' is an escaped quote
          break;
        }
        value += text[j++];
      }
      tokens.push({ t: 'lit', value, pos: i });
      i = j + 1;
      continue;
    }
    NUMBER.lastIndex = i;
    const num = /[-\d.]/.test(c) ? NUMBER.exec(text) : null;
    if (num && !(c === '-' && num[0] === '-')) {
      tokens.push({ t: 'lit', value: Number(num[0]), pos: i });
      i += num[0].length;
      continue;
    }
    IDENT.lastIndex = i;
    const id = IDENT.exec(text);
    if (id) {
      const name = id[0];
      tokens.push(KEYWORDS.has(name) ? { t: 'lit', value: KEYWORDS.get(name)!, pos: i } : { t: 'ident', name, pos: i });
      i += name.length;
      continue;
    }
    const op = OPS.find((o) => text.startsWith(o, i));
    if (!op) throw new ExprError(`unexpected character '${c}' in expression`, i);
    tokens.push({ t: 'op', op, pos: i });
    i += op.length;
  }
}

// ---------------------------------------------------------------- parser (precedence climbing)

const PRECEDENCE: Record<BinaryOp, number> = { '||': 1, '&&': 2, '==': 3, '!=': 3, '<': 4, '<=': 4, '>': 4, '>=': 4 };

class Parser {
  private k = 0;
  constructor(private readonly tokens: Token[]) {}

  parseAll(): Expr {
    if (this.peek().t === 'end') throw new ExprError('empty expression', this.peek().pos);
    const e = this.binary(1);
    const tok = this.peek();
    if (tok.t !== 'end') throw new ExprError(`unexpected ${describe(tok)} in expression`, tok.pos);
    return e;
  }

  private peek(): Token {
    return this.tokens[this.k];
  }

  private binary(minPrec: number): Expr {
    let left = this.unary();
    for (;;) {
      const tok = this.peek();
      const op = tok.t === 'op' ? (tok.op as BinaryOp) : undefined;
      const prec = op ? PRECEDENCE[op] : undefined;
      if (!op || prec === undefined || prec < minPrec) return left;
      this.k++;
      const right = this.binary(prec + 1);
      left = { type: 'binary', op, left, right };
    }
  }

  private unary(): Expr {
    const tok = this.peek();
    if (tok.t === 'op' && tok.op === '!') {
      this.k++;
      return { type: 'not', operand: this.unary() };
    }
    return this.primary();
  }

  private primary(): Expr {
    const tok = this.tokens[this.k++];
    if (tok.t === 'lit') return { type: 'literal', value: tok.value };
    if (tok.t === 'op' && tok.op === '(') {
      const e = this.binary(1);
      const close = this.tokens[this.k++];
      if (close.t !== 'op' || close.op !== ')') throw new ExprError(`expected ')' but found ${describe(close)}`, close.pos);
      return e;
    }
    if (tok.t === 'ident') {
      const path = [tok.name];
      for (;;) {
        const next = this.peek();
        if (next.t === 'op' && next.op === '.') {
          this.k++;
          const name = this.tokens[this.k++];
          if (name.t !== 'ident') throw new ExprError(`expected a name after '.' but found ${describe(name)}`, name.pos);
          path.push(name.name);
        } else if (next.t === 'op' && next.op === '[') {
          this.k++;
          const key = this.tokens[this.k++];
          const close = this.tokens[this.k++];
          if (key.t !== 'lit' || key.value === null || typeof key.value === 'boolean') {
            throw new ExprError(`expected a string or number inside '[ ]' but found ${describe(key)}`, key.pos);
          }
          if (close.t !== 'op' || close.op !== ']') throw new ExprError(`expected ']' but found ${describe(close)}`, close.pos);
          path.push(String(key.value));
        } else {
          return { type: 'ref', path };
        }
      }
    }
    throw new ExprError(`expected a value but found ${describe(tok)}`, tok.pos);
  }
}

function describe(tok: Token): string {
  if (tok.t === 'end') return 'the end of the expression';
  if (tok.t === 'op') return `'${tok.op}'`;
  if (tok.t === 'ident') return `'${tok.name}'`;
  return `literal ${JSON.stringify(tok.value)}`;
}

/** Parses the inside of `${{ ... }}` (without the braces). Throws ExprError. */
export function parseExpression(text: string): Expr {
  return new Parser(tokenize(text, 0, false).tokens).parseAll();
}

// ---------------------------------------------------------------- templates: strings holding ${{ }}

export type Segment = { text: string } | { expr: Expr; source: string; offset: number };

/** Splits a string into literal text and expressions; `offset` is where `${{` starts. Throws ExprError. */
export function parseTemplate(s: string): Segment[] {
  const out: Segment[] = [];
  let i = 0;
  for (;;) {
    const open = s.indexOf('${{', i);
    if (open < 0) {
      if (i < s.length) out.push({ text: s.slice(i) });
      return out;
    }
    if (open > i) out.push({ text: s.slice(i, open) });
    const { tokens, end } = tokenize(s, open + 3, true);
    const expr = new Parser(tokens).parseAll();
    out.push({ expr, source: s.slice(open, end), offset: open });
    i = end;
  }
}

export function hasExpression(s: string): boolean {
  return s.includes('${{');
}

/** The one expression when the whole string (trimmed) is `${{ ... }}`, else undefined. */
function wholeExpression(segments: Segment[]): Expr | undefined {
  const parts = segments.filter((p) => !('text' in p && p.text.trim() === ''));
  return parts.length === 1 && 'expr' in parts[0] ? parts[0].expr : undefined;
}

// ---------------------------------------------------------------- evaluation

export function truthy(v: unknown): boolean {
  return !(v === null || v === undefined || v === false || v === 0 || v === '' || Number.isNaN(v));
}

function lookup(path: string[], ctx: ExprContext): unknown {
  const [root, ...rest] = path;
  let cur: unknown;
  if (root === 'params') cur = ctx.params ?? {};
  else if (root === 'steps') cur = ctx.steps ?? {};
  else if (root === 'run') {
    const r = ctx.run;
    cur = r ? { id: r.id, dir: r.dir, started_at: r.startedAt, pipeline: r.pipeline } : {};
  } else return null;
  for (const key of rest) {
    // Own data only: `constructor`, `__proto__` or `length` are not values a pipeline wrote.
    if (cur === null || typeof cur !== 'object' || !Object.prototype.propertyIsEnumerable.call(cur, key)) return null;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur === undefined ? null : cur;
}

function compare(op: BinaryOp, a: unknown, b: unknown): boolean {
  if (op === '==') return a === b;
  if (op === '!=') return a !== b;
  const comparable = (typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string');
  if (!comparable) return false;
  const [x, y] = [a as number | string, b as number | string];
  return op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y;
}

/** Evaluates an expression (parsed, or the text inside `${{ }}`). Missing values read as null. */
export function evaluate(expr: Expr | string, ctx: ExprContext): unknown {
  const e = typeof expr === 'string' ? parseExpression(expr) : expr;
  switch (e.type) {
    case 'literal':
      return e.value;
    case 'ref':
      return lookup(e.path, ctx);
    case 'not':
      return !truthy(evaluate(e.operand, ctx));
    case 'binary': {
      const left = evaluate(e.left, ctx);
      if (e.op === '||') return truthy(left) ? left : evaluate(e.right, ctx);
      if (e.op === '&&') return truthy(left) ? evaluate(e.right, ctx) : left;
      return compare(e.op, left, evaluate(e.right, ctx));
    }
  }
}

/** How a value reads inside a longer string: null → '', objects → JSON. */
export function interpolate(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/**
 * Quotes a value for /bin/sh (POSIX single quotes), so that it reaches the program as one word
 * whatever it holds. `{` is also kept out of the quotes, so that no `{out_dir}` placeholder or
 * `${{` is ever read inside a quoted value.
 */
export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, "'\\''").replace(/\{/g, "'\\{'")}'`;
}

/**
 * Offsets of the `${{ }}` in shell text that stand inside quotes the text itself opens ('...' or
 * "..."): quoting their value again there would end those quotes instead. Throws ExprError.
 */
export function quotedExpressions(text: string): number[] {
  const out: number[] = [];
  let state: 'none' | 'single' | 'double' = 'none';
  for (const part of parseTemplate(text)) {
    if ('expr' in part) {
      if (state !== 'none') out.push(part.offset);
      continue;
    }
    const t = part.text;
    for (let i = 0; i < t.length; i++) {
      const c = t[i];
      if (state === 'single') {
        if (c === "'") state = 'none';
      } else if (c === '\\') i++;
      else if (state === 'double') {
        if (c === '"') state = 'none';
      } else if (c === "'") state = 'single';
      else if (c === '"') state = 'double';
    }
  }
  return out;
}

/** Where a step's `with` holds shell text: a command step's `run` when it is one string (shell: true). */
function shellTextKey(uses: string, value: Record<string, unknown>): string | undefined {
  return uses === 'command' && typeof value.run === 'string' ? 'run' : undefined;
}

/**
 * Resolves one string: exactly one expression keeps the value's type; otherwise the parts are joined.
 * With `quote`, every value is quoted by it (and the result is always text).
 */
export function resolveString(s: string, ctx: ExprContext, quote?: (text: string) => string): unknown {
  if (!hasExpression(s)) return s;
  const segments = parseTemplate(s);
  const whole = wholeExpression(segments);
  if (whole && !quote) return evaluate(whole, ctx);
  const q = quote ?? ((x: string) => x);
  return segments.map((p) => ('text' in p ? p.text : q(interpolate(evaluate(p.expr, ctx))))).join('');
}

/**
 * A step's `with` resolved at run time. In shell text (a command step's `run` with shell: true)
 * every value is quoted for the shell: a value is one word, never more shell code.
 */
export function resolveWith(uses: string, value: Record<string, unknown>, ctx: ExprContext): Record<string, unknown> {
  const out = resolveValue(value, ctx) as Record<string, unknown>;
  const key = shellTextKey(uses, value);
  if (key) out[key] = resolveString(value[key] as string, ctx, shellQuote);
  return out;
}

/** Deep substitution of every `${{ }}` in strings of a value (objects and arrays are copied). */
export function resolveValue(value: unknown, ctx: ExprContext): unknown {
  if (typeof value === 'string') return resolveString(value, ctx);
  if (Array.isArray(value)) return value.map((v) => resolveValue(v, ctx));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveValue(v, ctx);
    return out;
  }
  return value;
}

/** Evaluates a step condition (`if`), written with or without `${{ }}`. */
export function evaluateCondition(condition: string, ctx: ExprContext): boolean {
  const t = condition.trim();
  return truthy(hasExpression(t) ? resolveString(t, ctx) : evaluate(t, ctx));
}

// ---------------------------------------------------------------- static use: references, partial evaluation

export interface Reference {
  /** e.g. ['steps', 'sft', 'outputs', 'checkpoint'] */
  path: string[];
  /** The `${{ ... }}` text it appeared in (or the bare expression). */
  source: string;
  /** Offset of that text inside the string. */
  offset: number;
}

export function refsOf(e: Expr, out: string[][] = []): string[][] {
  if (e.type === 'ref') out.push(e.path);
  else if (e.type === 'not') refsOf(e.operand, out);
  else if (e.type === 'binary') {
    refsOf(e.left, out);
    refsOf(e.right, out);
  }
  return out;
}

/** Every name referenced by expressions anywhere inside a value. Throws ExprError on bad syntax. */
export function references(value: unknown): Reference[] {
  if (typeof value === 'string') {
    if (!hasExpression(value)) return [];
    return parseTemplate(value).flatMap((p) =>
      'expr' in p ? refsOf(p.expr).map((path) => ({ path, source: p.source, offset: p.offset })) : [],
    );
  }
  if (Array.isArray(value)) return value.flatMap(references);
  if (value && typeof value === 'object') return Object.values(value).flatMap(references);
  return [];
}

function isLiteral(v: unknown): v is Literal {
  return v === null || ['string', 'number', 'boolean'].includes(typeof v);
}

/**
 * Partial evaluation: names under `roots` (e.g. params) are replaced by their values and
 * constant parts are folded; other names stay. `a || b` with a known truthy `a` becomes `a`.
 * With `asCondition`, only the truthiness of the result is kept, which folds further.
 */
export function simplify(e: Expr, ctx: ExprContext, roots: ReadonlySet<string>, asCondition = false): Expr {
  switch (e.type) {
    case 'literal':
      return e;
    case 'ref': {
      if (!roots.has(e.path[0])) return e;
      const v = lookup(e.path, ctx);
      return { type: 'literal', value: isLiteral(v) ? v : JSON.stringify(v) };
    }
    case 'not': {
      const operand = simplify(e.operand, ctx, roots, asCondition);
      return operand.type === 'literal' ? { type: 'literal', value: !truthy(operand.value) } : { type: 'not', operand };
    }
    case 'binary': {
      const logical = e.op === '||' || e.op === '&&';
      const left = simplify(e.left, ctx, roots, asCondition && logical);
      const right = simplify(e.right, ctx, roots, asCondition && logical);
      if (left.type === 'literal' && logical) {
        const pickLeft = e.op === '||' ? truthy(left.value) : !truthy(left.value);
        return pickLeft ? left : right;
      }
      // Only truthiness matters in a condition: `x && true` is `x`, `x || true` is true.
      if (asCondition && logical && right.type === 'literal') {
        const t = truthy(right.value);
        if (e.op === '&&') return t ? left : { type: 'literal', value: false };
        return t ? { type: 'literal', value: true } : left;
      }
      if (left.type === 'literal' && right.type === 'literal') {
        return { type: 'literal', value: evaluate({ type: 'binary', op: e.op, left, right }, {}) as Literal };
      }
      return { type: 'binary', op: e.op, left, right };
    }
  }
}

function printLiteral(v: Literal): string {
  if (typeof v === 'string') return `'${v.replace(/'/g, "''")}'`;
  return String(v);
}

/** Expression text that parses back to the same tree. */
export function printExpression(e: Expr): string {
  switch (e.type) {
    case 'literal':
      return printLiteral(e.value);
    case 'ref':
      return e.path.map((p, i) => (i === 0 ? p : /^[A-Za-z_][A-Za-z0-9_-]*$/.test(p) ? `.${p}` : `['${p}']`)).join('');
    case 'not': {
      const inner = printExpression(e.operand);
      return e.operand.type === 'binary' ? `!(${inner})` : `!${inner}`;
    }
    case 'binary': {
      const side = (x: Expr) => (x.type === 'binary' && PRECEDENCE[x.op] <= PRECEDENCE[e.op] ? `(${printExpression(x)})` : printExpression(x));
      return `${side(e.left)} ${e.op} ${side(e.right)}`;
    }
  }
}

/**
 * A substituted value kept as data. Text that holds `${{` (a param set to "${{ steps.x... }}")
 * becomes a string-literal expression, which the run-time resolution turns back into the same
 * text instead of evaluating what the text says.
 */
function inert(v: unknown): unknown {
  if (typeof v === 'string') return hasExpression(v) ? `\${{ ${printLiteral(v)} }}` : v;
  if (Array.isArray(v)) return v.map(inert);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = inert(x);
    return out;
  }
  return v;
}

/**
 * Substitutes the names under `roots` inside every string of a value. A string that is exactly
 * one expression and folds to a constant keeps the constant's type; what cannot be resolved yet
 * stays as `${{ }}` text.
 */
export function substitute(value: unknown, ctx: ExprContext, roots: ReadonlySet<string>, quote?: (text: string) => string): unknown {
  if (typeof value === 'string') {
    if (!hasExpression(value)) return value;
    const segments = parseTemplate(value);
    const whole = wholeExpression(segments);
    if (whole && !quote) {
      const s = simplify(whole, ctx, roots);
      return s.type === 'literal' ? inert(s.value) : `\${{ ${printExpression(s)} }}`;
    }
    return segments
      .map((p) => {
        if ('text' in p) return p.text;
        const s = simplify(p.expr, ctx, roots);
        if (s.type !== 'literal') return `\${{ ${printExpression(s)} }}`;
        const text = interpolate(s.value);
        // Left to the run-time resolution, which quotes it for the shell like any other value.
        if (hasExpression(text)) return inert(text) as string;
        return quote ? quote(text) : text;
      })
      .join('');
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, ctx, roots));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substitute(v, ctx, roots);
    return out;
  }
  return value;
}

/**
 * `substitute` for a step's `with`: in shell text (a command step's `run` with shell: true) each
 * substituted value is quoted for the shell; what is left for run time is quoted by `resolveWith`.
 */
export function substituteWith(uses: string, value: Record<string, unknown>, ctx: ExprContext, roots: ReadonlySet<string>): Record<string, unknown> {
  const out = substitute(value, ctx, roots) as Record<string, unknown>;
  const key = shellTextKey(uses, value);
  if (key) out[key] = substitute(value[key], ctx, roots, shellQuote);
  return out;
}
