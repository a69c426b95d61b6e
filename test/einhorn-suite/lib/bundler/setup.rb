# Stand-in for `require 'bundler/setup'` (einhorn's test/_lib.rb, its
# integration fixtures): the suite runs from a source checkout without a
# bundle; run.sh puts einhorn's lib/ on RUBYLIB instead. Only what the suite
# calls is defined.
module Bundler
  def self.with_clean_env
    yield
  end

  def self.with_unbundled_env
    yield
  end
end
