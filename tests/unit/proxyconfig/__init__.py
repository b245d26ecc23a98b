"""Tests of kmesh.proxyconfig: config generation as pure functions, golden files and properties."""
