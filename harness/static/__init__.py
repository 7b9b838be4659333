"""The static tier: checks over renders and compiled workflows (no cluster); `registry` lists them, `runner` runs them."""
