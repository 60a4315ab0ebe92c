// The face step's camera, shared by the authorization page and the loan contract's page: the
// page's section holds #camera, #face-prompt, #face-progress, #face-hint and the #face-go button.
// "开始" asks the server for a challenge (POST {base}/face-challenge), films afresh, shows each
// step's prompt in big letters, takes the frames of each step and uploads them with their step
// indices (POST {base}/face). `post(path, body)` answers the JSON; `done(json)` gets the outcome.
window.SunshineFace = function (post, done) {
  "use strict";
  var video = document.getElementById("camera"), hint = document.getElementById("face-hint");
  var facePrompt = document.getElementById("face-prompt"), faceProgress = document.getElementById("face-progress");
  function openCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      hint.textContent = "当前浏览器不能使用摄像头，请在微信中打开本页面";
      return Promise.reject(new Error("no camera"));
    }
    return navigator.mediaDevices.getUserMedia({video: {facingMode: "user", width: 640, height: 480}, audio: false})
      .then(function (stream) { video.srcObject = stream; return stream; })
      .catch(function (e) { hint.textContent = "没有摄像头权限，请允许使用摄像头后刷新页面"; throw e; });
  }
  function startCamera() { if (!video.srcObject) openCamera().catch(function () {}); }
  function restartCamera() {  // each attempt films afresh, from the moment its challenge is known
    if (video.srcObject) video.srcObject.getTracks().forEach(function (t) { t.stop(); });
    video.srcObject = null;
    return openCamera().then(function () {
      return new Promise(function (ok) {
        if (video.readyState >= 2) { ok(); return; }
        video.addEventListener("loadeddata", function () { ok(); }, {once: true});
      });
    });
  }
  function grab() {
    var c = document.createElement("canvas");
    c.width = video.videoWidth || 640; c.height = video.videoHeight || 480;
    c.getContext("2d").drawImage(video, 0, 0, c.width, c.height);
    return new Promise(function (ok) { c.toBlob(ok, "image/jpeg", 0.9); });
  }
  // Each step: its prompt, then FRAMES frames from LEAD ms on, GAP ms apart; a step lasts STEP ms.
  var LEAD = 1000, GAP = 400, STEP = 2400;
  function faceDone(button) {
    button.disabled = false; button.textContent = "开始"; facePrompt.textContent = ""; faceProgress.textContent = "";
  }
  function runChallenge(challenge, button) {
    var frames = [], taken = [], grabs = [], t0 = performance.now(), n = challenge.steps.length;
    function at(ms, fn) { setTimeout(fn, Math.max(0, t0 + ms - performance.now())); }
    challenge.steps.forEach(function (step, k) {
      at(k * STEP, function () {
        facePrompt.textContent = step.prompt;
        faceProgress.textContent = "第" + (k + 1) + "/" + n + "步";
      });
      for (var j = 0; j < challenge.frames_per_step; j++) {
        at(k * STEP + LEAD + j * GAP, function () {
          var slot = grabs.length;  // in the order taken, whenever each JPEG is ready
          grabs.push(grab().then(function (blob) { frames[slot] = blob; taken[slot] = k; }));
        });
      }
    });
    at(n * STEP, function () {
      Promise.all(grabs).then(function () {
        facePrompt.textContent = ""; faceProgress.textContent = "";
        hint.textContent = "正在核验，请稍候…";
        var form = new FormData();
        form.append("nonce", challenge.nonce);
        frames.forEach(function (f, i) { form.append("frames", f, "frame" + i + ".jpg"); form.append("steps", String(taken[i])); });
        post("/face", form).then(function (j) { faceDone(button); hint.textContent = ""; done(j); });
      });
    });
  }
  document.getElementById("face-go").onclick = function () {
    var button = this;
    button.disabled = true; button.textContent = "请按提示做动作…";
    hint.textContent = "正在准备动作提示…";
    post("/face-challenge", {}).then(function (challenge) {
      if (!challenge.ok) { faceDone(button); hint.textContent = ""; done(challenge); return; }
      restartCamera().then(function () {
        hint.textContent = "请在" + challenge.expires_in + "秒内按提示完成动作";
        runChallenge(challenge, button);
      }).catch(function () { faceDone(button); });
    });
  };
  return {startCamera: startCamera};
};
