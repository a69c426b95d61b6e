# Loaded with -r before einhorn's integration tests (run.sh). Points the
# suite's helpers at the target chosen by run.sh instead of
# `bundle exec <checkout>/bin/einhorn` and `bundle exec ./bin/einhornsh`,
# without touching einhorn's files: the overrides are prepended to
# Helpers::EinhornHelpers, so they win over the methods the helper file
# defines when it is loaded later.
#
# Environment (set by run.sh):
#   EHSUITE_BIN      directory of the bin/einhorn and bin/einhornsh wrappers
#   EHSUITE_RUN      marker carried by every process of this run
#   EHSUITE_FLAT=1   drop the leading word `einhorn` of the tests' command
#                          lines (see README: by default they run as written,
#                          a master supervising a second master)
#   EHSUITE_RELOAD_UPGRADE=1  (ours, ours-ctl) send `reload; upgrade` where a
#                          test sends `upgrade` (see README)
#   EHSUITE_LOGDIR   if set, each master's stdout/stderr go to a file there
#   EHSUITE_TEST_TIMEOUT  seconds before a hung test's processes are killed
require 'minitest'

module EinhornSuite
  BIN = ENV.fetch('EHSUITE_BIN')
  RUN = ENV.fetch('EHSUITE_RUN')

  # Pids of the processes of this run (they all inherit EHSUITE_RUN),
  # this test process excluded.
  def self.run_pids
    marker = "EHSUITE_RUN=#{RUN}"
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
      if ENV['EHSUITE_RELOAD_UPGRADE'] == '1' && ENV['EHSUITE_TARGET'] != 'einhorn'
        # einhyrningsins' `upgrade` replaces the workers only; `reload` is
        # einhorn's master re-exec. What einhorn's `upgrade` does is
        # `reload; upgrade` there.
        commandline = commandline.each_with_index.map do |w, i|
          w == 'upgrade' && i > 0 && commandline[i - 1] == '-e' ? 'reload; upgrade' : w
        end
      end
      Subprocess.check_call([File.join(BIN, 'einhornsh')] + commandline,
                            {
                              :stdin => '/dev/null',
                              :stdout => '/dev/null',
                              :stderr => '/dev/null'
                            }.merge(options))
    end

    def with_running_einhorn(cmdline, options = {}, &blk)
      if ENV['EHSUITE_FLAT'] == '1' && cmdline.first == 'einhorn'
        cmdline = cmdline[1..-1]
      end
      if (dir = ENV['EHSUITE_LOGDIR']) && !options[:output_callback]
        name = "#{self.class.name}__#{self.name}".gsub(/[^A-Za-z0-9_.-]+/, '_')[0, 150]
        options = options.merge(:output_callback => lambda do |out, err|
          File.write(File.join(dir, "#{name}.log"),
                     "command: #{(default_einhorn_command + cmdline).inspect}\n" \
                     "--- stdout\n#{out}\n--- stderr\n#{err}\n")
        end)
      end
      super(cmdline, options) do |process|
        @ehsuite_master = process # for the Watchdog
        blk.call(process) if blk
      end
    end
  end

  # When a test fails inside with_running_einhorn, the suite's helper sends
  # the master nothing (Minitest::Assertion is no StandardError), SIGKILLs it
  # after 10 s and then waits for its stdout/stderr to close, which never
  # happens while its workers (or, as the tests are written, its inner
  # master) live on. So: once the master has been reaped and something still
  # holds its output 3 s later, or after EHSUITE_TEST_TIMEOUT seconds in any
  # case, every process of the run is killed (by pid), so that the test fails
  # and the rest of the suite still runs.
  module Watchdog
    def run
      limit = Float(ENV.fetch('EHSUITE_TEST_TIMEOUT', '40'))
      started = Time.now
      fired = nil
      dog = Thread.new do
        master_gone_at = nil
        loop do
          sleep 0.25
          master = @ehsuite_master
          if master && master.status
            master_gone_at ||= Time.now
          end
          if master_gone_at && Time.now - master_gone_at > 3
            fired = 'its master exited, but its output is still held open'
          elsif Time.now - started > limit
            fired = "still running after #{limit}s"
          end
          next unless fired
          $stderr.puts "\n[einhorn-suite] #{self.class.name}##{name}: #{fired}: killing its processes"
          EinhornSuite.kill_run_processes
          break
        end
      end
      result = super
      if fired && result.passed?
        result.failures << Minitest::UnexpectedError.new(RuntimeError.new("hung (#{fired}); processes killed by the watchdog"))
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
