// The API reference page (/api/v1/docs): Swagger UI, served from this origin by the swagger-ui-bundle package,
// pointed at the OpenAPI description named on the page. A file of its own: the page's CSP allows no inline script.

// "Try it out" runs with the browser's console session cookie, if any: an unsafe method also needs that
// session's X-CSRF-Token, asked from GET /api/v1/session for each such request (a login in another tab replaces it).

async function withCsrf(req) {
  const method = String(req.method || "GET").toUpperCase();
  if (method === "GET" || method === "HEAD" || new URL(req.url, location.href).origin !== location.origin) return req;
  try {
    const res = await fetch("/api/v1/session", { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (res.ok) req.headers = { ...req.headers, "X-CSRF-Token": (await res.json()).csrf_token };
  } catch { /* no session: the request goes without, and the API answers why */ }
  return req;
}

const root = document.getElementById("swagger-ui");
window.SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  domNode: root,
  layout: "BaseLayout",
  deepLinking: true,
  presets: [window.SwaggerUIBundle.presets.apis],
  validatorUrl: null,  // no badge fetched from validator.swagger.io
  queryConfigEnabled: false,  // ?url=... cannot point the page at another description
  requestInterceptor: withCsrf,
});
