# Loaded with -r before einhorn's integration tests (run.sh). Points the
# suite's helpers at the target chosen by run.sh instead of
# `bundle exec <checkout>/bin/einhorn` and `bundle exec ./bin/einhornsh`,
# without touching einhorn's files: the overrides are prepended to
# Helpers::EinhornHelpers, so they win over the methods the helper file
# defines when it is loaded later.
#
# Environment (set by run.sh):
#   EINHORN_SUITE_BIN      directory of the bin/einhorn and bin/einhornsh wrappers
#   EINHORN_SUITE_RUN      marker carried by every process of this run
#   EINHORN_SUITE_FLAT=1   drop the leading word `einhorn` of the tests' command
#                          lines (see README: by default they run as written,
#                          a master supervising a second master)
#   EINHORN_SUITE_LOGDIR   if set, each master's stdout/stderr go to a file there
#   EINHORN_SUITE_TEST_TIMEOUT  seconds before a hung test's processes are killed
require 'minitest'

module EinhornSuite
  BIN = ENV.fetch('EINHORN_SUITE_BIN')
  RUN = ENV.fetch('EINHORN_SUITE_RUN')

  # Pids of the processes of this run (they all inherit EINHORN_SUITE_RUN),
  # this test process excluded.
  def self.run_pids
    marker = "EINHORN_SUITE_RUN=#{RUN}"
    Dir.glob('/proc/[0-9]*').map { |d| File.basename(d).to_i }.select do |pid|
      next false if pid == ::Process.pid
      begin
        File.binread("/proc/#{pid}/environ").split("\0").include?(marker)
      rescue SystemCallError
        false
      end
    end
  end

  def self.kill_run_processes(signal = 'KILL')
    run_pids.each do |pid|
      begin
        ::Process.kill(signal, pid)
      rescue SystemCallError
      end
    end
  end

  module HelperOverrides
    def default_einhorn_command
      [File.join(BIN, 'einhorn')]
    end

    def einhornsh(commandline, options = {})
      Subprocess.check_call([File.join(BIN, 'einhornsh')] + commandline,
                            {
                              :stdin => '/dev/null',
                              :stdout => '/dev/null',
                              :stderr => '/dev/null'
                            }.merge(options))
    end

    def with_running_einhorn(cmdline, options = {}, &blk)
      if ENV['EINHORN_SUITE_FLAT'] == '1' && cmdline.first == 'einhorn'
        cmdline = cmdline[1..-1]
      end
      if (dir = ENV['EINHORN_SUITE_LOGDIR']) && !options[:output_callback]
        name = "#{self.class.name}__#{self.name}".gsub(/[^A-Za-z0-9_.-]+/, '_')[0, 150]
        options = options.merge(:output_callback => lambda do |out, err|
          File.write(File.join(dir, "#{name}.log"),
                     "command: #{(default_einhorn_command + cmdline).inspect}\n" \
                     "--- stdout\n#{out}\n--- stderr\n#{err}\n")
        end)
      end
      super(cmdline, options, &blk)
    end
  end

  # A test that hangs (typically on the communicator thread, when a worker
  # outlives its master and keeps the master's stdout pipe open) gets every
  # process of the run killed after the timeout, so that it fails and the
  # rest of the suite still runs.
  module Watchdog
    def run
      limit = Float(ENV.fetch('EINHORN_SUITE_TEST_TIMEOUT', '90'))
      fired = false
      dog = Thread.new do
        sleep limit
        fired = true
        $stderr.puts "\n[einhorn-suite] #{self.class.name}##{name} still running after #{limit}s: killing its processes"
        EinhornSuite.kill_run_processes
      end
      result = super
      if fired && result.passed?
        result.failures << Minitest::UnexpectedError.new(RuntimeError.new("hung for #{limit}s (processes killed by the watchdog)"))
      end
      result
    ensure
      dog.kill if dog
      # Nothing a test started may outlive it: report and kill leftovers.
      left = EinhornSuite.run_pids
      unless left.empty?
        desc = left.map do |pid|
          cmd = (File.binread("/proc/#{pid}/cmdline").split("\0").join(' ') rescue '?')
          "#{pid} (#{cmd[0, 120]})"
        end
        $stderr.puts "\n[einhorn-suite] #{self.class.name}##{name} left #{left.size} process(es) behind, killed: #{desc.join('; ')}"
        EinhornSuite.kill_run_processes
      end
    end
  end
end

module Helpers
  module EinhornHelpers
  end
end
Helpers::EinhornHelpers.prepend(EinhornSuite::HelperOverrides)
Minitest::Test.prepend(EinhornSuite::Watchdog)
