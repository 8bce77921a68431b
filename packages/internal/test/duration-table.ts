/**
 * The duration strings every package accepts, with their meaning in ms. The root test
 * (test/durations.test.ts) runs this one table against each package's options.
 */
export const DURATION_TABLE: readonly [string | number, number][] = [
  [0, 0],
  [250, 250],
  ['250', 250],
  ['500ms', 500],
  ['1.5s', 1_500],
  ['30s', 30_000],
  ['15m', 900_000],
  ['2h', 7_200_000],
  ['1h30m', 5_400_000],
  ['1d', 86_400_000],
  ['1w', 604_800_000],
  [' 2 s ', 2_000],
  ['1m30s500ms', 90_500],
]

export const INVALID_DURATIONS: readonly unknown[] = [
  '',
  'soon',
  '-1s',
  '1y',
  '1 hour',
  '1e3',
  'NaN',
  -1,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  null,
  {},
  '5'.repeat(80),
]
