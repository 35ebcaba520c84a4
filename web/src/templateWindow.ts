// Which rows of a variable-height list are in (or near) a scroll box's view: the Templates list keeps only those
// in the page (pure; unit-tested). Heights not yet measured count as `estimate`.

export interface RowWindow {
  /** First row rendered. */
  first: number;
  /** One past the last row rendered. */
  last: number;
  /** Height of the rows above `first` (a spacer keeps the scrollbar true). */
  before: number;
  /** Height of the rows from `last` on. */
  after: number;
}

/** Rows overlapping [scrollTop - margin, scrollTop + view + margin], at least one row when there is one. */
export function rowWindow(heights: ArrayLike<number>, scrollTop: number, view: number, margin: number): RowWindow {
  const n = heights.length;
  const lo = Math.max(0, scrollTop - margin);
  const hi = scrollTop + view + margin;
  let y = 0;
  let first = 0;
  while (first < n - 1 && y + heights[first] <= lo) y += heights[first++];
  const before = y;
  let last = first;
  while (last < n && (last === first || y < hi)) y += heights[last++];
  let after = 0;
  for (let k = last; k < n; k++) after += heights[k];
  return { first, last, before, after };
}
