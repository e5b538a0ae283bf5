import { expect, test } from "bun:test";
import { refusalFolder } from "../../src/http/audit";

test("a caller's refusals within a minute of its recorded one are counted into its next entry, each caller and address apart", () => {
  let now = 0;
  const fold = refusalFolder(() => now);
  expect(fold("anon\n10.0.0.1")).toBe(0);
  for (let i = 0; i < 5; i++) expect(fold("anon\n10.0.0.1")).toBeUndefined();
  expect(fold("anon\n10.0.0.2")).toBe(0);
  expect(fold("eve\n10.0.0.1")).toBe(0);
  now = 59_999;
  expect(fold("anon\n10.0.0.1")).toBeUndefined();
  now = 60_000;
  expect(fold("anon\n10.0.0.1")).toBe(6);
  expect(fold("anon\n10.0.0.2")).toBe(0);
  now = 200_000;
  expect(fold("anon\n10.0.0.1")).toBe(0);
});
