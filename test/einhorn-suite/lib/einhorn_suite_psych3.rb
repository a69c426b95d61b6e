# Loaded into every Ruby process of the run via RUBYOPT (run.sh).
#
# einhorn 0.8.x and its suite were written for Psych 3, where YAML.load is an
# unsafe load. Psych 4 (Ruby >= 3.1) made it a safe load: the re-executed
# einhorn master dies reading its own state back (Set, Time), and the suite's
# get_state (YAML.load of `state`, symbol keys and a Time) raises
# Psych::DisallowedClass. Restore the Psych 3 behaviour.
require 'yaml'
if Psych.respond_to?(:unsafe_load)
  module Psych
    class << self
      def load(yaml, permitted_classes: nil, permitted_symbols: nil, aliases: nil, **kw)
        unsafe_load(yaml, **kw)
      end
    end
  end
end
