/* The kiosk's camera: frames go to a Web Worker that decodes QR codes (loaded only on demand). */
(function () {
  "use strict";
  var stream = null, worker = null, timer = null, waiting = false;

  function stop() {
    clearInterval(timer);
    timer = null;
    if (worker) { worker.terminate(); worker = null; }
    if (stream) { stream.getTracks().forEach(function (track) { track.stop(); }); stream = null; }
    var video = document.getElementById("camera-video");
    if (video) video.srcObject = null;
    waiting = false;
  }

  function start(video, workerUrl, onCode) {
    stop();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return Promise.reject(new Error("no camera"));
    return navigator.mediaDevices.getUserMedia({
      audio: false, video: { facingMode: "environment", width: { ideal: 1280 }, height: { ideal: 720 } }
    }).then(function (media) {
      stream = media;
      video.srcObject = media;
      return video.play();
    }).then(function () {
      var canvas = document.createElement("canvas");
      var context = canvas.getContext("2d", { willReadFrequently: true });
      worker = new Worker(workerUrl);
      worker.onmessage = function (event) {
        waiting = false;
        if (event.data && stream) { stop(); onCode(event.data); }
      };
      timer = setInterval(function () {
        if (waiting || !stream || video.readyState < 2 || !video.videoWidth) return;
        var scale = Math.min(1, 800 / Math.max(video.videoWidth, video.videoHeight));
        var width = Math.round(video.videoWidth * scale), height = Math.round(video.videoHeight * scale);
        canvas.width = width; canvas.height = height;
        context.drawImage(video, 0, 0, width, height);
        var pixels = context.getImageData(0, 0, width, height).data;
        waiting = true;
        worker.postMessage({ buffer: pixels.buffer, width: width, height: height }, [pixels.buffer]);
      }, 200);
    });
  }

  window.IOPCamera = { start: start, stop: stop };
})();
