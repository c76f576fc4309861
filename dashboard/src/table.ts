import { Child, h } from './dom';

export interface Column<T> {
  label: string;
  /** What the column sorts by; a column without it does not sort. */
  sort?: (row: T) => number | string;
  cell: (row: T) => Child;
  numeric?: boolean;
}

/** A table sorted by clicking a header (again: the other direction); the sort survives re-renders of the same table id. */
const sortState = new Map<string, { col: number; desc: boolean }>();

export function sortableTable<T>(id: string, columns: Column<T>[], rows: T[], initial: { col: number; desc: boolean }): HTMLElement {
  const state = sortState.get(id) ?? initial;
  const wrap = h('div', { class: 'table-wrap' });
  const draw = () => {
    const col = columns[state.col];
    const sorted = [...rows];
    if (col?.sort) {
      const key = col.sort;
      sorted.sort((a, b) => {
        const x = key(a);
        const y = key(b);
        const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
        return state.desc ? -c : c;
      });
    }
    const head = h(
      'tr',
      {},
      columns.map((c, i) =>
        h(
          'th',
          {
            class: `${c.numeric ? 'num' : ''} ${c.sort ? 'sortable' : ''}`,
            'aria-sort': i === state.col ? (state.desc ? 'descending' : 'ascending') : null,
            onclick: c.sort
              ? () => {
                  state.desc = state.col === i ? !state.desc : true;
                  state.col = i;
                  sortState.set(id, state);
                  draw();
                }
              : null,
          },
          c.label,
          i === state.col && c.sort ? (state.desc ? ' ▾' : ' ▴') : '',
        ),
      ),
    );
    const body = sorted.map((r) => h('tr', {}, columns.map((c) => h('td', { class: c.numeric ? 'num' : '' }, c.cell(r)))));
    wrap.replaceChildren(h('table', { 'data-table': id }, h('thead', {}, head), h('tbody', {}, body)));
  };
  draw();
  return wrap;
}
