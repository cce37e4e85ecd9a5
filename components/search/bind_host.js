// Preloaded into NNI's manager with NODE_OPTIONS=--require (see components/networking.py): its REST
// server and web UI listen on DLAUTOML_NNI_HOST (127.0.0.1 unless set) instead of every interface.
// NNI 3.0's manager calls app.listen(port) and has no option for the address.
const net = require("net");
const host = process.env.DLAUTOML_NNI_HOST || "127.0.0.1";
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" && typeof args[1] !== "string") {
    args.splice(1, 0, host);
  } else if (args[0] && typeof args[0] === "object" && args[0].path === undefined && args[0].host === undefined) {
    args[0] = { ...args[0], host };
  }
  return listen.apply(this, args);
};

// With DLAUTOML_NNI_PARENT_PID set (a search sets it to its own process), the manager ends its
// process group (itself, the tuner and the trials it started) once that process is gone: a search
// killed with SIGKILL left the manager training trials that nothing would record.
const parent = Number(process.env.DLAUTOML_NNI_PARENT_PID || 0);
if (parent) {
  setInterval(() => {
    if (process.ppid !== parent) {
      try {
        process.kill(-process.pid, "SIGKILL");
      } catch (error) {
        process.exit(1);
      }
    }
  }, 1000).unref();
}
