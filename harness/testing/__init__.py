"""Test doubles at the process boundaries (fake APIs over HTTP, fake executables). No pytest import."""
