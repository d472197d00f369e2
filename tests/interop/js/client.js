// The npm SDK `dynamics-web-api` (v2) used the way an agent uses it, pointed at the gateway.
//
// Run by tests/interop.rs as `node client.js` with GATEWAY_URL (the gateway's origin; its default
// tenant serves the bare /api/data/v9.2/) and NODE_PATH (the installed node_modules). Prints ONE
// JSON object on stdout: {operation: {ok, detail}}. `ok` says whether the SDK call succeeded;
// for a failure `detail` holds what the SDK's error exposes (status, code, message). The Rust
// test decides which outcome each operation must have. Nothing else is written to stdout.
// AGENT_TOKEN, when set, is the bearer token the SDK sends (an agent's Entra token or client
// key); FOREIGN_TABLE, when set, adds the step `foreign_table`: a read of that collection.
"use strict";

const { DynamicsWebApi } = require("dynamics-web-api");

const LASTNAME = "InteropJs";
const report = {};

// The SDK's error, as an agent would read it.
function describe(error) {
  const first = Array.isArray(error) ? error[0] : error;
  return {
    status: first && first.status,
    code: first && first.code,
    message: first && first.message,
  };
}

async function step(name, run) {
  try {
    report[name] = { ok: true, detail: await run() };
  } catch (error) {
    report[name] = { ok: false, detail: describe(error) };
  }
}

// Every page of a retrieveMultiple, following the nextLinks the gateway hands back.
async function allPages(api, request) {
  const pages = [];
  const nextLinks = [];
  let response = await api.retrieveMultiple(request);
  pages.push(response.value.length);
  while (response.oDataNextLink) {
    nextLinks.push(response.oDataNextLink);
    if (pages.length > 10) throw new Error("more pages than rows: the nextLink does not advance");
    response = await api.retrieveMultiple(request, response.oDataNextLink);
    pages.push(response.value.length);
  }
  return { pages, nextLinks };
}

async function main() {
  const gateway = process.env.GATEWAY_URL;
  if (!gateway) throw new Error("GATEWAY_URL is not set");
  const api = new DynamicsWebApi({
    serverUrl: gateway,
    dataApi: { version: "9.2" },
    onTokenRefresh: async () => process.env.AGENT_TOKEN || "any",
  });
  const ids = [];
  const byName = { collection: "contacts", filter: `lastname eq '${LASTNAME}'` };

  await step("whoami", async () => {
    const who = await api.callFunction("WhoAmI");
    return { userId: who.UserId };
  });

  await step("create", async () => {
    for (let n = 1; n <= 5; n++) {
      ids.push(await api.create({ collection: "contacts", data: { firstname: `P${n}`, lastname: LASTNAME } }));
    }
    return { ids };
  });

  await step("retrieve", async () => {
    const row = await api.retrieve({ collection: "contacts", key: ids[0], select: ["firstname", "lastname"] });
    return { firstname: row.firstname, lastname: row.lastname };
  });

  await step("update", async () => {
    const updated = await api.update({ collection: "contacts", key: ids[0], data: { firstname: "Renamed" } });
    const row = await api.retrieve({ collection: "contacts", key: ids[0], select: ["firstname"] });
    return { updated, firstname: row.firstname };
  });

  await step("retrieve_multiple_paging", () =>
    allPages(api, { ...byName, select: ["firstname"], maxPageSize: 2 }),
  );

  await step("retrieve_all", async () => {
    const all = await api.retrieveAll({ ...byName, select: ["firstname"], maxPageSize: 2 });
    return { count: all.value.length };
  });

  // Over 2000 characters of URL, the SDK silently sends the GET inside a $batch.
  await step("long_url_as_batch", async () => {
    const padding = Array.from({ length: 40 }, (_, n) => `firstname ne 'padding-${"x".repeat(30)}-${n}'`);
    const filter = [byName.filter, ...padding].join(" and ");
    const response = await api.retrieveMultiple({ collection: "contacts", select: ["firstname"], filter });
    return { filterLength: filter.length, count: response.value.length };
  });

  await step("batch", async () => {
    api.startBatch();
    api.retrieveMultiple({ ...byName, select: ["firstname"] });
    api.create({ collection: "contacts", data: { firstname: "FromBatch", lastname: LASTNAME } });
    api.update({ collection: "contacts", key: ids[1], data: { firstname: "BatchRenamed" } });
    const results = await api.executeBatch();
    const row = await api.retrieve({ collection: "contacts", key: ids[1], select: ["firstname"] });
    return {
      listed: results[0].value.length,
      created: results[1],
      updated: results[2],
      firstname: row.firstname,
    };
  });

  if (process.env.FOREIGN_TABLE) {
    await step("foreign_table", () => api.retrieveMultiple({ collection: process.env.FOREIGN_TABLE, select: ["name"] }));
  }

  // Forbidden: each must come back as the gateway's 403 GatewayPolicyDenied.
  await step("denied_table", () => api.retrieveMultiple({ collection: "opportunities", select: ["name"] }));
  await step("denied_write", () => api.create({ collection: "accounts", data: { name: "Not allowed" } }));
  await step("denied_expand", () =>
    api.retrieve({ collection: "contacts", key: ids[0], select: ["firstname"], expand: [{ property: "createdby" }] }),
  );
  await step("denied_navigation", () =>
    api.retrieve({ collection: "contacts", key: ids[0], navigationProperty: "createdby" }),
  );
  await step("denied_batch", async () => {
    api.startBatch();
    api.retrieveMultiple({ ...byName, select: ["firstname"] });
    api.create({ collection: "accounts", data: { name: "Smuggled" } });
    return api.executeBatch();
  });
}

main()
  .catch((error) => {
    report.script = { ok: false, detail: String((error && error.stack) || error) };
  })
  .finally(() => {
    process.stdout.write(JSON.stringify(report) + "\n");
  });
