// Sends one JSON body to a URL back to back for a number of seconds, from a process
// of its own, and prints how many were answered: the load for the health benchmark.
export {}; // a module: top-level await
const [url, token, file, seconds] = process.argv.slice(2);
const body = await Bun.file(file!).text();
const end = Date.now() + Number(seconds) * 1000;
let ok = 0;
while (Date.now() < end) {
  const res = await fetch(url!, { method: "POST", body, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" } });
  await res.arrayBuffer();
  if (res.ok) ok++;
}
console.log(`${ok} JSON requests of ${(body.length / 1e6).toFixed(1)} MB answered`);
