# Stand-in for `require 'mocha/setup'` (einhorn's test/_lib.rb): the
# integration tests use no stubs or mocks, so nothing is needed.
