/*
 * Signing for the API docs page: Swagger UI's requestInterceptor signs every "Try it out" request
 * in the browser, as datingtoday_client/signing.py does (docs/signing.md).
 *
 * Invariants:
 * - appkey, appsecret, sign method, userId and token live in this page's memory only (the form's
 *   fields): nothing is written to localStorage, sessionStorage or a cookie, and the appsecret is
 *   never sent; a reload forgets them all.
 * - A request is signed only when its operation declares the appSignature security scheme (the
 *   document's own list: /api/health, /api/time, /api/openapi.json stay unsigned); userId and token
 *   are added only where the operation declares userToken.
 * - Each request gets a fresh timestamp and nonce; a sign, timestamp, nonce or appkey typed into the
 *   operation's own fields is replaced, never signed over.
 * - hmac-sha256: Web Crypto's HMAC-SHA256 over "DT-HMAC-SHA256\nMETHOD\nPATH\nCANONICAL" (every
 *   parameter but sign, RFC 3986-encoded, sorted). md5-legacy: the original string with a small MD5
 *   (Web Crypto has none). Web Crypto exists only in a secure context (https, or localhost /
 *   127.0.0.1): elsewhere the page says so and sends the request unsigned.
 */
(function () {
  "use strict";

  var HMAC_PREFIX = "DT-HMAC-SHA256";
  var MD5_EXCLUDED = { timestamp: 1, nonce: 1, appkey: 1, sign: 1, token: 1 };
  var SIGNING_NAMES = ["appkey", "timestamp", "nonce", "sign"];
  var USER_NAMES = ["userId", "token"];
  var LOGIN_PATH = "/api/auth/login";
  var ui = null;

  function field(id) { return document.getElementById(id); }
  function value(id) { var el = field(id); return el ? el.value.trim() : ""; }

  function status(text, problem) {
    var el = field("dt-signing-status");
    if (!el) return;
    el.textContent = text;
    el.className = problem ? "problem" : "";
  }

  // RFC 3986: only A-Z a-z 0-9 - _ . ~ stay as they are (encodeURIComponent also keeps ! ' ( ) *).
  function pct(text) {
    return encodeURIComponent(text).replace(/[!'()*]/g, function (c) {
      return "%" + c.charCodeAt(0).toString(16).toUpperCase();
    });
  }

  function canonicalQuery(params) {
    var pairs = [];
    Object.keys(params).forEach(function (name) {
      if (name !== "sign") pairs.push([pct(name), pct(params[name])]);
    });
    pairs.sort(function (a, b) {
      if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
      return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
    });
    return pairs.map(function (p) { return p[0] + "=" + p[1]; }).join("&");
  }

  function hex(bytes) {
    return Array.prototype.map.call(new Uint8Array(bytes), function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join("");
  }

  function hmacSha256Hex(secret, message) {
    var encoder = new TextEncoder();
    return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
      .then(function (key) { return crypto.subtle.sign("HMAC", key, encoder.encode(message)); })
      .then(hex);
  }

  // MD5 (RFC 1321) over UTF-8 bytes, for md5-legacy applications only.
  var MD5_SHIFTS = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
  var MD5_K = [];
  for (var k = 0; k < 64; k++) MD5_K.push(Math.floor(Math.abs(Math.sin(k + 1)) * 4294967296) >>> 0);

  function md5Hex(text) {
    var bytes = new TextEncoder().encode(text);
    var blocks = Math.ceil((bytes.length + 9) / 64);
    var buffer = new Uint8Array(blocks * 64);
    buffer.set(bytes);
    buffer[bytes.length] = 0x80;
    var view = new DataView(buffer.buffer);
    view.setUint32(buffer.length - 8, (bytes.length * 8) >>> 0, true);
    view.setUint32(buffer.length - 4, Math.floor(bytes.length / 536870912), true);
    var h = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    for (var offset = 0; offset < buffer.length; offset += 64) {
      var a = h[0], b = h[1], c = h[2], d = h[3];
      for (var i = 0; i < 64; i++) {
        var f, g, round = i >> 4;
        if (round === 0) { f = (b & c) | (~b & d); g = i; }
        else if (round === 1) { f = (d & b) | (~d & c); g = (5 * i + 1) % 16; }
        else if (round === 2) { f = b ^ c ^ d; g = (3 * i + 5) % 16; }
        else { f = c ^ (b | ~d); g = (7 * i) % 16; }
        f = (f + a + MD5_K[i] + view.getUint32(offset + 4 * g, true)) >>> 0;
        var s = MD5_SHIFTS[round * 4 + (i % 4)];
        a = d; d = c; c = b;
        b = (b + ((f << s) | (f >>> (32 - s)))) >>> 0;
      }
      h[0] = (h[0] + a) >>> 0; h[1] = (h[1] + b) >>> 0; h[2] = (h[2] + c) >>> 0; h[3] = (h[3] + d) >>> 0;
    }
    var out = new DataView(new ArrayBuffer(16));
    h.forEach(function (word, n) { out.setUint32(4 * n, word, true); });
    return hex(out.buffer);
  }

  function md5LegacyString(params, secret) {
    var pairs = Object.keys(params).filter(function (name) { return !MD5_EXCLUDED[name]; })
      .map(function (name) { return name + "=" + params[name]; });
    pairs.sort(function (a, b) { return a < b ? -1 : a > b ? 1 : 0; });
    return pairs.join("&") + (params.token || "") + (params.timestamp || "") + (params.nonce || "") + secret;
  }

  function computeSign(method, path, params, secret, signMethod) {
    if (signMethod === "md5-legacy") return Promise.resolve(md5Hex(md5LegacyString(params, secret)));
    return hmacSha256Hex(secret, HMAC_PREFIX + "\n" + method.toUpperCase() + "\n" + path + "\n" + canonicalQuery(params));
  }

  function freshNonce() {
    var bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return hex(bytes.buffer);
  }

  // The operation's declared security, from the loaded document: which schemes it needs.
  function securityOf(method, path) {
    try {
      var spec = ui.specSelectors.specJson().toJS();
      var operation = ((spec.paths || {})[path] || {})[method.toLowerCase()];
      if (!operation) return null;
      var needs = {};
      (operation.security || spec.security || []).forEach(function (requirement) {
        Object.keys(requirement).forEach(function (scheme) { needs[scheme] = true; });
      });
      return needs;
    } catch (e) {
      return null;
    }
  }

  // The request's parameters (query, or a url-encoded / multipart body) as a plain object and a
  // function that writes the signed ones back. Empty values are left out, as a client would.
  function paramsOf(req, url) {
    var body = req.body;
    var isForm = typeof body === "string" && body.length > 0 && !/^\s*[{[]/.test(body);
    if (body instanceof URLSearchParams) { body = body.toString(); isForm = true; }
    if (typeof FormData !== "undefined" && body instanceof FormData) {
      var fromForm = {};
      body.forEach(function (v, name) { if (typeof v === "string" && v !== "" && !(name in fromForm)) fromForm[name] = v; });
      return {
        params: fromForm,
        write: function (signed) {
          Object.keys(signed).forEach(function (name) { body.set(name, signed[name]); });
        }
      };
    }
    var source = isForm ? new URLSearchParams(body) : url.searchParams;
    var params = {};
    source.forEach(function (v, name) { if (v !== "" && !(name in params)) params[name] = v; });
    return {
      params: params,
      write: function (signed) {
        var encoded = new URLSearchParams();
        Object.keys(signed).forEach(function (name) { encoded.append(name, signed[name]); });
        if (isForm) {
          req.body = encoded.toString();
        } else {
          url.search = encoded.toString();
          req.url = url.toString();
        }
      }
    };
  }

  function requestInterceptor(req) {
    var url = new URL(req.url, window.location.href);
    var method = (req.method || "GET").toUpperCase();
    var needs = securityOf(method, url.pathname);
    if (url.origin !== window.location.origin || !needs || !needs.appSignature) return req;
    var appkey = value("dt-appkey"), secret = value("dt-appsecret"), signMethod = value("dt-sign-method");
    if (!appkey || !secret) {
      status("Not signed: enter an appkey and appsecret above (the server will answer 300).", true);
      return req;
    }
    if (signMethod !== "md5-legacy" && !(window.crypto && crypto.subtle)) {
      status("Not signed: Web Crypto needs a secure context (https, or the page on localhost / 127.0.0.1).", true);
      return req;
    }
    var found = paramsOf(req, url);
    var params = found.params;
    SIGNING_NAMES.forEach(function (name) { delete params[name]; });
    if (needs.userToken) {
      USER_NAMES.forEach(function (name) { delete params[name]; });
      if (value("dt-user-id")) params.userId = value("dt-user-id");
      if (value("dt-token")) params.token = value("dt-token");
    }
    params.appkey = appkey;
    params.timestamp = (Date.now() / 1000).toFixed(3);
    params.nonce = freshNonce();
    return computeSign(method, url.pathname, params, secret, signMethod).then(function (sign) {
      params.sign = sign;
      found.write(params);
      status("Signed " + method + " " + url.pathname + " (" + signMethod + ")" +
        (needs.userToken && params.token ? " as user " + params.userId : "") + ".", false);
      return req;
    });
  }

  // A successful sign-in fills userId and token in, so the next calls act as that user.
  function responseInterceptor(res) {
    try {
      var path = new URL(res.url, window.location.href).pathname;
      var body = res.body || (typeof res.text === "string" ? JSON.parse(res.text) : null);
      if (path === LOGIN_PATH && body && body.code === 0 && body.data && body.data.token) {
        field("dt-user-id").value = String(body.data.user_id);
        field("dt-token").value = body.data.token;
        status("Signed in as user " + body.data.user_id + ": userId and token filled in.", false);
      }
    } catch (e) { /* not JSON: nothing to take */ }
    return res;
  }

  function attach(swaggerUi) {
    ui = swaggerUi;
    var forget = field("dt-forget");
    if (forget) {
      forget.addEventListener("click", function () {
        ["dt-appkey", "dt-appsecret", "dt-user-id", "dt-token"].forEach(function (id) { field(id).value = ""; });
        status("Forgotten. Enter an appkey and appsecret to sign requests.", false);
      });
    }
  }

  window.DatingTodaySigning = {
    requestInterceptor: requestInterceptor,
    responseInterceptor: responseInterceptor,
    attach: attach,
    // For checking this file against datingtoday_client/signing.py (tests/test_docs_page.py).
    canonicalQuery: canonicalQuery,
    md5Hex: md5Hex,
    md5LegacyString: md5LegacyString,
    computeSign: computeSign
  };
})();
