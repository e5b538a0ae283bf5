// Regenerates assets/demo.onnx, the model `npm start` serves with no config.
import { writeFileSync } from "node:fs";
import { affineModel } from "../test/fixtures/onnx-builder";

writeFileSync(new URL("../assets/demo.onnx", import.meta.url), affineModel());
console.log("wrote assets/demo.onnx");
