# Stand-in for stripe's `subprocess` gem, only as much of it as einhorn's
# integration suite (test/integration/_lib/helpers/einhorn_helpers.rb and the
# tests) uses, built on Process.spawn:
#
#   Subprocess::PIPE, Subprocess::NonZeroExit,
#   Subprocess::Process.new(cmd, :stdin/:stdout/:stderr (PIPE, path, IO, fd),
#                           :cwd, :env (replaces the whole environment))
#   #communicate (read stdout and stderr to EOF, then wait), #poll, #wait,
#   #terminate, #send_signal, #pid, #status
#   Subprocess.call / Subprocess.check_call (with an optional block).
#
# Unlike the gem, #poll and #wait may be called from two threads at once (the
# suite does: a communicator thread waits while the test thread polls); the
# child is reaped exactly once and both see the same status.
require 'thread'

module Subprocess
  PIPE = -1
  STDOUT = -2

  class NonZeroExit < StandardError
    attr_reader :command, :status

    def initialize(cmd, status)
      @command = cmd.join(' ')
      @status = status
      how = if status.exited?
              "returned non-zero exit status #{status.exitstatus}"
            elsif status.signaled?
              "was terminated by signal #{status.termsig}"
            else
              'exited for an unknown reason'
            end
      super("Command #{@command} #{how}")
    end
  end

  def self.popen(cmd, opts = {}, &blk)
    Process.new(cmd, opts, &blk)
  end

  def self.call(cmd, opts = {}, &blk)
    Process.new(cmd, opts, &blk).wait
  end

  def self.check_call(cmd, opts = {}, &blk)
    status = Process.new(cmd, opts, &blk).wait
    raise NonZeroExit.new(cmd, status) unless status.success?
    status
  end

  def self.check_output(cmd, opts = {}, &blk)
    child = Process.new(cmd, opts.merge(:stdout => PIPE), &blk)
    out, _ = child.communicate
    raise NonZeroExit.new(cmd, child.status) unless child.wait.success?
    out
  end

  class Process
    attr_reader :stdin, :stdout, :stderr, :command, :pid

    def initialize(cmd, opts = {}, &blk)
      raise ArgumentError, 'cmd must be an Array of strings' unless cmd.is_a?(Array)
      raise ArgumentError, 'cmd cannot be empty' if cmd.empty?
      @command = cmd
      @status = nil
      @lock = Mutex.new
      @reaped = ConditionVariable.new
      @waiting = false

      spawn_opts = { :close_others => true }
      to_close = []
      { :in => [:stdin, 'r'], :out => [:stdout, 'w'], :err => [:stderr, 'w'] }.each do |fd, (key, mode)|
        val = opts[key]
        next if val.nil?
        if key == :stderr && val == STDOUT
          spawn_opts[:err] = [:child, :out]
        elsif val == PIPE
          r, w = IO.pipe
          if mode == 'r'
            spawn_opts[fd] = r
            to_close << r
            @stdin = w
          else
            spawn_opts[fd] = w
            to_close << w
            instance_variable_set("@#{key}", r)
          end
        elsif val.is_a?(String)
          spawn_opts[fd] = [val, mode == 'r' ? File::RDONLY : (File::WRONLY | File::CREAT | File::TRUNC), 0644]
        else
          spawn_opts[fd] = val # IO or Integer
        end
      end
      spawn_opts[:chdir] = opts[:cwd] if opts[:cwd]
      (opts[:retain_fds] || []).each { |fd| spawn_opts[fd] = fd }

      args = [[cmd[0], cmd[0]], *cmd[1..-1]]
      if opts[:env]
        spawn_opts[:unsetenv_others] = true
        args.unshift(opts[:env])
      end
      begin
        @pid = ::Process.spawn(*args, spawn_opts)
      ensure
        to_close.each(&:close)
      end
      blk.call(self) if blk
    end

    # Status if the child has exited (reaping it), else nil.
    def poll
      @lock.synchronize do
        return @status if @status || @waiting
        res = ::Process.waitpid2(@pid, ::Process::WNOHANG)
        @status = res[1] if res
        @status
      end
    end

    def status
      @status
    end

    def wait
      @lock.synchronize do
        while @status.nil? && @waiting
          @reaped.wait(@lock)
        end
        return @status if @status
        @waiting = true
      end
      st = ::Process.waitpid2(@pid)[1]
      @lock.synchronize do
        @status = st
        @waiting = false
        @reaped.broadcast
      end
      st
    end

    def send_signal(signal)
      ::Process.kill(signal, @pid) unless @status
    rescue Errno::ESRCH
      nil
    end

    def terminate
      send_signal('TERM')
    end

    # Writes input (if any) to stdin, reads stdout and stderr to EOF, then
    # waits for the child. Returns [stdout, stderr] (nil for streams that are
    # not pipes).
    def communicate(input = nil)
      out = @stdout ? +'' : nil
      err = @stderr ? +'' : nil
      if @stdin
        begin
          @stdin.write(input) if input
        rescue Errno::EPIPE
        end
        @stdin.close
      end
      open = { @stdout => out, @stderr => err }.reject { |io, _| io.nil? }
      until open.empty?
        ready, = IO.select(open.keys)
        ready.each do |io|
          begin
            open[io] << io.read_nonblock(65536)
          rescue IO::WaitReadable, Errno::EINTR
          rescue EOFError, Errno::EPIPE
            io.close
            open.delete(io)
          end
        end
      end
      wait
      [out, err]
    end
  end
end
