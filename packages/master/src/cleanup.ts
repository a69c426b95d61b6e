/** Undo stack for start-up and exit: each step removes what an earlier one created, newest first. */
export class Cleanup {
  private readonly steps: Array<() => void> = [];

  add(step: () => void): void {
    this.steps.push(step);
  }

  run(): void {
    while (this.steps.length) {
      try {
        (this.steps.pop() as () => void)();
      } catch {
        /* best effort: the next step still runs */
      }
    }
  }
}
