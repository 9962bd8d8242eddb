'use strict';
/**
 * Declared distributions, the twin of lab/runtime/distributions.py: the same parameters and
 * bounds (PARAMS), the same refusals (parse, naming the parameter), and every draw the
 * quantile at ONE uniform u (0 <= u <= 1 - 2^-53) from the portable generator.
 *
 *   {"dist": "fixed", "value": 80}
 *   {"dist": "uniform", "min": 20, "max": 200}
 *   {"dist": "exponential", "mean": 80}
 *   {"dist": "lognormal", "median": 80, "p99": 1200}
 *   {"dist": "pareto", "min": 20, "alpha": 1.5}
 *   {"dist": "empirical", "values": [12, 40, 41, 300]}
 *
 * fixed, uniform and empirical are bit-identical to Python (one multiplication and one
 * addition, each correctly rounded in IEEE 754). exponential, lognormal and pareto go through
 * Math.log and `**`, which V8 computes with its own routines (fdlibm's) and CPython with the C
 * library's (glibc's): each is within an ulp of the true value, not always the same ulp, so
 * those draws agree to about 1e-15 relative (test/vectors.json checks 1e-12). Z99 is Python's
 * constant written out rather than recomputed, so it is the same double.
 */

const MAX_EMPIRICAL = 10000;
const LAST_U = 1 - 2 ** -53;
const EXTREMES = [0, 2 ** -53, 0.5, LAST_U]; // where parse evaluates a quantile
const Z99 = 2.3263478740408408; // Python's NormalDist().inv_cdf(0.99), the same double
const MAX_DOUBLE = Number.MAX_VALUE;

class DistributionError extends RangeError {
  constructor(field, message) {
    super(field ? `${field}: ${message}` : message);
    this.name = 'DistributionError';
    this.field = field;
  }
}

function param(name, options = {}) {
  return { name, low: 0, high: null, openLow: false, atLeast: '', above: '', items: 0, ...options };
}

const PARAMS = {
  fixed: [param('value')],
  uniform: [param('min'), param('max', { atLeast: 'min' })],
  exponential: [param('mean')],
  lognormal: [param('median', { low: 0.001 }), param('p99', { low: 0.001, above: 'median' })],
  pareto: [param('min', { openLow: true }), param('alpha', { low: 0.1, high: 100 })],
  empirical: [param('values', { items: MAX_EMPIRICAL })],
};
const KINDS = Object.keys(PARAMS);

/** Python's `format(x, "g")`: six significant digits, an exponent below 1e-4 or from 1e6. */
function g(x) {
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const [mantissa, exp] = x.toExponential(5).split('e');
  const e = Number(exp);
  if (e < -4 || e >= 6) {
    const digits = mantissa.replace(/\.?0+$/, '');
    return `${digits}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  return x.toFixed(Math.max(0, 5 - e)).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
}

function top(p, cap) {
  return Math.min(p.high === null ? cap : p.high, MAX_DOUBLE);
}

function bounds(p, cap) {
  return `a number ${p.openLow ? 'above' : 'from'} ${g(p.low)} to ${g(top(p, cap))}`;
}

/** The standard normal's inverse CDF: Wichura's AS241, as Python's statistics module has it. */
function normalInvCdf(p) {
  const q = p - 0.5;
  let num;
  let den;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    num = (((((((2.5090809287301226727e3 * r + 3.3430575583588128105e4) * r +
      6.7265770927008700853e4) * r + 4.5921953931549871457e4) * r +
      1.3731693765509461125e4) * r + 1.9715909503065514427e3) * r +
      1.3314166789178437745e2) * r + 3.387132872796366608e0) * q;
    den = (((((((5.2264952788528545610e3 * r + 2.8729085735721942674e4) * r +
      3.9307895800092710610e4) * r + 2.1213794301586595867e4) * r +
      5.3941960214247511077e3) * r + 6.8718700749205790830e2) * r +
      4.2313330701600911252e1) * r + 1.0);
    return num / den;
  }
  let r = q <= 0 ? p : 1 - p;
  r = Math.sqrt(-Math.log(r));
  if (r <= 5) {
    r -= 1.6;
    num = (((((((7.7454501427834140764e-4 * r + 2.2723844989269184583e-2) * r +
      2.4178072517745061177e-1) * r + 1.2704582524523683826e0) * r +
      3.6478483247632045841e0) * r + 5.7694972214606914055e0) * r +
      4.6303378461565452959e0) * r + 1.4234371107496835773e0);
    den = (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r +
      1.5198666563616457197e-2) * r + 1.4810397642748007459e-1) * r +
      6.8976733498510000455e-1) * r + 1.6763848301838038494e0) * r +
      2.05319162663775882187e0) * r + 1.0);
  } else {
    r -= 5;
    num = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r +
      1.2426609473880784386e-3) * r + 2.6532189526576123093e-2) * r +
      2.9656057182850489123e-1) * r + 1.7848265399172913358e0) * r +
      5.4637849111641143699e0) * r + 6.6579046435011037772e0);
    den = (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r +
      1.8463183175100546818e-5) * r + 7.868691311456132591e-4) * r +
      1.4875361290850615025e-2) * r + 1.3692988092273580531e-1) * r +
      5.9983220655588793769e-1) * r + 1.0);
  }
  const x = num / den;
  return q < 0 ? -x : x;
}

class Distribution {
  constructor(kind, params, high, values = []) {
    this.kind = kind;
    this.params = params; // as PARAMS declares them, in its order
    this.high = high; // draws are clipped to [0, high]
    this.values = values; // empirical: sorted
  }

  /** The draw at the uniform u, or at the next uniform of a stream (portable.Stream). */
  sample(u) {
    return this.clip(this.at(typeof u === 'number' ? u : u.random()));
  }

  clip(value) {
    return Math.min(Math.max(value, 0), this.high);
  }

  /** The quantile at u (0 <= u <= LAST_U), before clipping. */
  at(u) {
    const p = this.params;
    switch (this.kind) {
      case 'fixed':
        return p[0];
      case 'uniform':
        return p[0] + u * (p[1] - p[0]);
      case 'exponential':
        return -p[0] * Math.log(1 - u);
      case 'lognormal': {
        const z = normalInvCdf(Math.max(u, 2 ** -54));
        return p[0] * (p[1] / p[0]) ** (z / Z99);
      }
      case 'pareto':
        return p[0] / (1 - u) ** (1 / p[1]);
      default: {
        const n = this.values.length;
        return this.values[Math.min(n - 1, Math.max(0, Math.ceil(u * n) - 1))];
      }
    }
  }

  /** The value below which a share q of draws fall (q = 1 read as LAST_U). */
  quantile(q) {
    if (!(q >= 0 && q <= 1)) throw new RangeError(`a quantile's share is from 0 to 1, not ${q}`);
    return this.clip(this.at(Math.min(q, LAST_U)));
  }

  /** The mean draw (ignoring the clip; a Pareto with alpha <= 1 has none: high). */
  mean() {
    const p = this.params;
    switch (this.kind) {
      case 'fixed':
      case 'exponential':
        return p[0];
      case 'uniform':
        return (p[0] + p[1]) / 2;
      case 'lognormal':
        return p[0] * Math.exp((Math.log(p[1] / p[0]) / Z99) ** 2 / 2);
      case 'pareto':
        return p[1] > 1 ? (p[1] * p[0]) / (p[1] - 1) : this.high;
      default:
        return this.values.reduce((a, b) => a + b, 0) / this.values.length;
    }
  }
}

function number(value, where, p, cap) {
  const ok = typeof value === 'number' && !Number.isNaN(value) && value >= p.low &&
    value <= top(p, cap) && !(p.openLow && value <= p.low);
  if (!ok) throw new DistributionError(where, `must be ${bounds(p, cap)}`);
  return value;
}

function readParam(spec, p, cap, found) {
  if (p.items) {
    const values = spec[p.name];
    if (!Array.isArray(values) || values.length < 1 || values.length > p.items) {
      const most = p.items.toLocaleString('en-US');
      throw new DistributionError(p.name, `must be a list of 1 to ${most} numbers`);
    }
    return values.map((v, i) => number(v, `${p.name}[${i}]`, p, cap));
  }
  const value = number(spec[p.name], p.name, p, cap);
  if (p.atLeast && value < found[p.atLeast]) {
    throw new DistributionError(p.name, `must be at least ${p.atLeast}`);
  }
  if (p.above && value <= found[p.above]) {
    throw new DistributionError(p.name, `must be above the ${p.above}`);
  }
  return value;
}

function drawable(dist) {
  const ends = [...EXTREMES.map((u) => dist.at(u)), dist.mean()];
  if (!ends.every(Number.isFinite)) {
    const tail = PARAMS[dist.kind][PARAMS[dist.kind].length - 1];
    throw new DistributionError(
      tail.name,
      'cannot be drawn with the other parameters given (its tail overflows a float); ' +
        bounds(tail, dist.high),
    );
  }
}

/** A distribution from its JSON form, or DistributionError naming the parameter. */
function parse(spec, high) {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    throw new DistributionError('', 'must be an object such as {"dist": "fixed", "value": 80}');
  }
  const kind = spec.dist;
  if (typeof kind !== 'string' || !Object.hasOwn(PARAMS, kind)) {
    throw new DistributionError('dist', `must be one of ${KINDS.join(', ')}`);
  }
  const declared = PARAMS[kind];
  const names = new Set(['dist', ...declared.map((p) => p.name)]);
  const extra = Object.keys(spec).filter((k) => !names.has(k)).map((k) => k.slice(0, 64)).sort();
  if (extra.length) throw new DistributionError(extra[0], `is not a parameter of ${kind}`);
  const found = {};
  for (const p of declared) found[p.name] = readParam(spec, p, high, found);
  const dist = kind === 'empirical'
    ? new Distribution(kind, [], high, [...found.values].sort((a, b) => a - b))
    : new Distribution(kind, declared.map((p) => found[p.name]), high);
  drawable(dist);
  return dist;
}

module.exports = {
  Distribution,
  DistributionError,
  EXTREMES,
  KINDS,
  LAST_U,
  MAX_EMPIRICAL,
  PARAMS,
  Z99,
  normalInvCdf,
  parse,
};
