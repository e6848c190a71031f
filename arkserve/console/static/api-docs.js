// The API reference page (/api/v1/docs): Swagger UI, served from this origin by the swagger-ui-bundle package,
// pointed at the OpenAPI description named on the page. A file of its own: the page's CSP allows no inline script.

const root = document.getElementById("swagger-ui");
window.SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  domNode: root,
  layout: "BaseLayout",
  deepLinking: true,
  presets: [window.SwaggerUIBundle.presets.apis],
  validatorUrl: null,  // no badge fetched from validator.swagger.io
  queryConfigEnabled: false,  // ?url=... cannot point the page at another description
});
