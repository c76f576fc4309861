// js-tiktoken publishes its rank files only through package "exports", which this project's
// CommonJS module resolution cannot see for types; at run time Node resolves them normally.
declare module 'js-tiktoken/ranks/*' {
  const ranks: import('js-tiktoken/lite').TiktokenBPE;
  export default ranks;
}
