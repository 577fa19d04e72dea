// Amounts: integers in the currency's minor unit, never floats. The
// exponents come from currencies.js, generated from common/currency.c.
import { CURRENCIES } from './currencies.js';

export const MAX_AMOUNT = 999999999999999;

export function currencyCodes() {
  return Object.keys(CURRENCIES);
}

export function exponentOf(code) {
  const c = CURRENCIES[code];
  return c ? c.exponent : null;
}

export function currencyName(code) {
  const c = CURRENCIES[code];
  return c ? c.name : code;
}

function split(amount, exponent) {
  const digits = String(Math.abs(amount)).padStart(exponent + 1, '0');
  const whole = digits.slice(0, digits.length - exponent);
  const frac = exponent ? digits.slice(digits.length - exponent) : '';
  return { whole, frac, sign: amount < 0 ? '-' : '' };
}

// 125000 EUR -> "1,250.00"; 150000 JPY -> "150,000"; 12345 KWD -> "12.345".
export function formatMinor(amount, code) {
  const e = exponentOf(code) ?? 2;
  const { whole, frac, sign } = split(amount, e);
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return sign + grouped + (e ? '.' + frac : '');
}

// The same without grouping, as typed in a form ("1250.00").
export function plainMinor(amount, code) {
  const e = exponentOf(code) ?? 2;
  const { whole, frac, sign } = split(amount, e);
  return sign + whole + (e ? '.' + frac : '');
}

function places(e) {
  if (e === 0) return 'no decimal places';
  return e === 1 ? 'at most 1 decimal place' : `at most ${e} decimal places`;
}

// Reads a major-unit amount ("12.50") for `code`. Returns {minor} or
// {error} with a message fit to show beside the field.
export function parseMajor(text, code, { allowZero = false } = {}) {
  const e = exponentOf(code);
  if (e === null) return { error: 'choose a currency' };
  const s = String(text).trim();
  if (s === '') return { error: 'enter an amount' };
  const m = /^(\d+)(?:\.(\d*))?$/.exec(s);
  if (!m) return { error: `enter a number such as ${e ? '12.' + '5'.padEnd(e, '0') : '1250'}` };
  const frac = m[2] ?? '';
  if (frac.length > e) return { error: `${code} takes ${places(e)}` };
  const whole = m[1].replace(/^0+(?=\d)/, '');
  const digits = (whole + frac.padEnd(e, '0')).replace(/^0+(?=\d)/, '');
  if (digits.length > 15) return { error: 'the amount is too large' };
  const minor = Number(digits);
  if (minor > MAX_AMOUNT) return { error: 'the amount is too large' };
  if (minor < 1 && !allowZero) return { error: 'the amount must be more than zero' };
  return { minor };
}
