// Types of the files src/platform/assets.ts imports through Bun, and of Node's SQLite driver.
declare module "*.proto" {
  const text: string;
  export default text;
}
declare module "*.sql" {
  const text: string;
  export default text;
}
declare module "*.onnx" {
  const path: string;
  export default path;
}
declare module "*.so.1" {
  const path: string;
  export default path;
}
declare module "*/standalone.js" {
  const path: string;
  export default path;
}
declare module "better-sqlite3";
