// Validates an OpenAPI 3 document against the specification's own schema
// and resolves every $ref in it; prints each operation as "METHOD PATH" for
// the caller to compare with what the server answers. Exit 1 on error.
//   node validate.js docs/openapi.yaml
const SwaggerParser = require("@apidevtools/swagger-parser");
const fs = require("fs");
const YAML = require("yaml");

(async () => {
  const file = process.argv[2];
  const doc = YAML.parse(fs.readFileSync(file, "utf8"));
  try {
    await SwaggerParser.validate(structuredClone(doc));
  } catch (e) {
    console.error(`${file}: ${e.message}`);
    process.exit(1);
  }
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of ["get", "put", "post", "delete", "patch"]) {
      if (!item[method]) continue;
      const codes = Object.keys(item[method].responses).join(",");
      console.log(`${method.toUpperCase()} ${path} ${codes}`);
    }
  }
})();
