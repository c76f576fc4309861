import { addUsd, fromNanos, toNanos, usdText, usdTitle } from './format';

describe('dashboard money formatting', () => {
  it('shows the exact string without rounding: trailing zeros dropped, cents kept, thousands grouped', () => {
    expect(usdText('0.000405000')).toBe('$0.000405');
    expect(usdText('1.250000000')).toBe('$1.25');
    expect(usdText('3.000000000')).toBe('$3.00');
    expect(usdText('0.000000001')).toBe('$0.000000001');
    expect(usdText('1234567.123456789')).toBe('$1,234,567.123456789');
    expect(usdText('-0.500000000')).toBe('-$0.50');
    expect(usdText(null)).toBe('—');
    expect(usdTitle('0.000405000')).toBe('0.000405000 USD (exact)');
  });

  it('adds exact amounts as integer nano-dollars (no float drift)', () => {
    // As floats, 0.1 + 0.2 is 0.30000000000000004.
    expect(addUsd(['0.100000000', '0.200000000'])).toBe('0.300000000');
    expect(addUsd(['9007199.254740993', '0.000000001', null])).toBe('9007199.254740994');
    expect(fromNanos(toNanos('123.456789012'))).toBe('123.456789012');
    expect(addUsd([])).toBe('0.000000000');
  });
});
