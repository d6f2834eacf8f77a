// Starts the Swagger UI on this server's own document. No validator: it would send the document
// to an outside service from the reader's browser.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    "dom_id": "#swagger-ui",
    "url": "/openapi.json",
    "deepLinking": true,
    "validatorUrl": "none",
    "layout": "StandaloneLayout",
    "presets": [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    "plugins": [SwaggerUIBundle.plugins.DownloadUrl]
  });
};
