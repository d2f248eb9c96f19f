/** The `mnist` package ships no types; this is the part of its API the project uses. */
declare module 'mnist' {
  interface Digit {
    input: number[];
    output: number[];
  }
  const mnist: { set(training: number, test: number): { training: Digit[]; test: Digit[] } };
  export default mnist;
}
