import { describe, expect, it } from "vitest";
import { LruCache } from "./detailCache";

describe("LruCache", () => {
  it("asks once per key while held and evicts the least recently used", async () => {
    const asked: string[] = [];
    const c = new LruCache<string>(2, async (k) => {
      asked.push(k);
      return `doc ${k}`;
    });
    expect(c.peek("a")).toBeUndefined();
    await c.get("a");
    await c.get("a");
    expect(asked).toEqual(["a"]);
    expect(c.peek("a")).toBe("doc a");
    await c.get("b");
    c.peek("a"); // a is now the most recently used: b goes first
    await c.get("c");
    expect(c.keys()).toEqual(["a", "c"]);
    expect(c.has("b")).toBe(false);
    await c.get("b");
    expect(asked).toEqual(["a", "b", "c", "b"]);
  });

  it("does not keep a failure, so the next request asks again", async () => {
    let n = 0;
    const c = new LruCache<number>(4, async () => {
      n += 1;
      if (n === 1) throw new Error("server down");
      return n;
    });
    await expect(c.get("x")).rejects.toThrow("server down");
    expect(c.has("x")).toBe(false);
    await expect(c.get("x")).resolves.toBe(2);
    expect(c.peek("x")).toBe(2);
  });

  it("holds a request in flight without data (peek undefined) and refuses a size below 1", async () => {
    let release: (v: string) => void = () => undefined;
    const c = new LruCache<string>(1, () => new Promise<string>((r) => (release = r)));
    const p = c.get("k");
    expect(c.has("k")).toBe(true);
    expect(c.peek("k")).toBeUndefined();
    release("v");
    await p;
    expect(c.peek("k")).toBe("v");
    expect(() => new LruCache<string>(0, async () => "")).toThrow(/at least 1/);
  });
});
