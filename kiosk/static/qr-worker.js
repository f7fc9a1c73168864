/* Decodes camera frames off the page's thread with the vendored jsQR (Apache-2.0, vendor/jsQR.LICENSE). */
importScripts("vendor/jsQR.js");
self.onmessage = function (event) {
  var frame = event.data;
  var found = self.jsQR(new Uint8ClampedArray(frame.buffer), frame.width, frame.height, { inversionAttempts: "dontInvert" });
  self.postMessage(found && found.data ? found.data : null);
};
