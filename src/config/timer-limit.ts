/**
 * The longest delay a Node timer keeps (2^31 - 1 ms, about 596 h): past it,
 * Node fires after 1 ms, so a timeout meant as "never" would fail every request.
 * Every duration routes.yaml accepts stays within it, and so must every timer
 * derived from them (a request's overall deadline, the drain's grace).
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** How MAX_TIMER_MS reads in problems: the largest whole number of hours within it. */
export const MAX_TIMER_TEXT = "596h";
