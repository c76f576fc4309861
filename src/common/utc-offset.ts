/**
 * Whether the UTC offset a timestamp ends with, if any, is one a clock can show: from -12:00 to
 * +14:00 with minutes below 60. ISO 8601 parsers (luxon's included) take any two digits, so
 * `2026-11-01T00:00:00+25:00` would otherwise be read as an instant a day earlier.
 */
export function hasPossibleUtcOffset(timestamp: string): boolean {
  const m = /[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?([+-])(\d{2})(?::?(\d{2}))?$/i.exec(timestamp.trim());
  if (!m) return true; // a date, a `Z`, or no offset: nothing to check here
  const hours = Number(m[2]);
  const minutes = Number(m[3] ?? 0);
  if (minutes > 59) return false;
  return m[1] === '+' ? hours < 14 || (hours === 14 && minutes === 0) : hours < 12 || (hours === 12 && minutes === 0);
}
