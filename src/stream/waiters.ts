/** Callers waiting for a stage's state to change: each wake() has all of them look again. */
export class Waiters {
  private list: Array<() => void> = [];

  /** Resolves once `ready()` is true, checked now and at each wake(); rejects with what `ready` throws (a failure). */
  until(ready: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        try {
          if (ready()) resolve();
          else this.list.push(check);
        } catch (err) {
          reject(err);
        }
      };
      check();
    });
  }

  wake(): void {
    const list = this.list;
    this.list = [];
    for (const check of list) check();
  }
}
