# node-gyp build description for native-reuseport.
#
#   native_reuseport        Node-API addon (plain C): listenTcp, listenUnix, ...
#   einhyrningsins-launch   tiny exec launcher the master uses to start children
#   einhyrningsins-bind-shim  LD_PRELOAD library (build/Release/einhyrningsins-bind-shim.so):
#                           the dyno driver's web processes' own bind() of $PORT
#                           becomes the inherited listening socket
#
# Both are C only (no C++, no node-addon-api).  node's common.gypi makes
# Release builds -O3; we replace that with -O2.
{
  "target_defaults": {
    "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    "defines": ["_GNU_SOURCE"],
    "configurations": {
      "Release": {
        "cflags!": ["-O3"],
        "cflags": ["-O2"]
      }
    }
  },
  "targets": [
    {
      "target_name": "native_reuseport",
      "sources": ["native/native_reuseport.c"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "einhyrningsins-launch",
      "type": "executable",
      "sources": ["native/launch.c"]
    },
    {
      "target_name": "einhyrningsins-bind-shim",
      "type": "shared_library",
      "product_prefix": "",
      "product_extension": "so",
      "sources": ["native/bind_shim.c"],
      "cflags": ["-fPIC"],
      "libraries": ["-ldl"]
    }
  ]
}
